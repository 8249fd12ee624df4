import { describe, expect, test } from "bun:test";
import { scratchDatabases } from "../../test/support/scratch-database";
import { dispatcher, HeldReceiver, outbox, until } from "../../test/support/webhook-outbox";
import { proxyConfigured, type Route, WebhookTargets } from "./webhook-targets";

const databases = scratchDatabases("webhook-targets-");

function targets(answers: (host: string) => string[], allowLoopback = false, proxied?: (scheme: string) => boolean) {
  const lookups: string[] = [];
  let now = 1_000_000;
  const t = new WebhookTargets({
    allowLoopback,
    proxied,
    now: () => now,
    resolve: async (host) => {
      lookups.push(host);
      return answers(host);
    },
  });
  return { t, lookups, later: (ms: number) => (now += ms) };
}

const routesOf = async (t: WebhookTargets, url: string): Promise<Route[]> => {
  const routing = await t.route(new URL(url));
  if ("refused" in routing) throw new Error(routing.refused);
  return routing.routes;
};

describe("WebhookTargets", () => {
  test("a name goes to its addresses, IPv4 first, with its host and port in the Host header; looked up once in 30 s", async () => {
    const { t, lookups, later } = targets(() => ["2001:db8::7", "198.51.100.4", "203.0.113.9"]);
    const routes = await routesOf(t, "https://hooks.example:8443/in?token=x");
    expect(routes.map(({ url, address, host }) => ({ url, address, host }))).toEqual([
      { url: "https://198.51.100.4:8443/in?token=x", address: "198.51.100.4", host: "hooks.example:8443" },
      { url: "https://203.0.113.9:8443/in?token=x", address: "203.0.113.9", host: "hooks.example:8443" },
      { url: "https://[2001:db8::7]:8443/in?token=x", address: "2001:db8::7", host: "hooks.example:8443" },
    ]);
    // One session per host, shared by its addresses and its later deliveries; another host gets its own.
    expect(new Set(routes.map((r) => r.session)).size).toBe(1);
    expect(routes[0]?.session).toBeInstanceOf(Bun.FetchSession);
    expect((await routesOf(t, "https://hooks.example:8443/other"))[0]?.session).toBe(routes[0]?.session as Bun.FetchSession);
    expect((await routesOf(t, "https://other.example/"))[0]?.session).not.toBe(routes[0]?.session as Bun.FetchSession);
    expect(lookups).toEqual(["hooks.example", "other.example"]);
    later(30_001);
    await routesOf(t, "http://hooks.example/in");
    expect(lookups).toEqual(["hooks.example", "other.example", "hooks.example"]);
    t.close();
  });

  test("a URL naming an address goes to it as it is, without a lookup or a session of its own", async () => {
    const { t, lookups } = targets(() => []);
    expect(await routesOf(t, "http://198.51.100.4:81/in")).toEqual([
      { url: "http://198.51.100.4:81/in", address: "198.51.100.4", host: "198.51.100.4:81" },
    ]);
    expect(await routesOf(t, "https://[2001:db8::7]/in")).toEqual([
      { url: "https://[2001:db8::7]/in", address: "2001:db8::7", host: "[2001:db8::7]" },
    ]);
    expect(lookups).toEqual([]);
  });

  test("this machine and link-local addresses are refused, named or resolved, unless allowed; so is a name without addresses", async () => {
    const { t } = targets((host) => {
      if (host === "gone.example") throw new Error("queryA ENOTFOUND gone.example");
      return host === "empty.example" ? [] : ["203.0.113.7", host === "meta.example" ? "169.254.169.254" : "::1"];
    });
    const refused = async (url: string) => {
      const routing = await t.route(new URL(url));
      return "refused" in routing ? routing.refused : null;
    };
    expect(await refused("http://127.0.0.1:8081/control/drain")).toBe(
      "refused: 127.0.0.1 is this machine or link-local; --webhook-allow-loopback allows it",
    );
    expect(await refused("http://app.localhost/")).toBe(
      "refused: app.localhost is this machine or link-local; --webhook-allow-loopback allows it",
    );
    expect(await refused("http://[fe80::1]/")).toBe("refused: fe80::1 is this machine or link-local; --webhook-allow-loopback allows it");
    expect(await refused("http://meta.example/")).toBe(
      "refused: meta.example resolves to 169.254.169.254, this machine or link-local; --webhook-allow-loopback allows it",
    );
    expect(await refused("http://mixed.example/")).toBe(
      "refused: mixed.example resolves to ::1, this machine or link-local; --webhook-allow-loopback allows it",
    );
    expect(await refused("http://gone.example/")).toBe("gone.example does not resolve: queryA ENOTFOUND gone.example");
    expect(await refused("http://empty.example/")).toBe("empty.example does not resolve: no addresses");

    const allowed = targets(() => ["127.0.0.1"], true).t;
    expect((await routesOf(allowed, "http://app.localhost:9/x")).map((r) => r.url)).toEqual(["http://127.0.0.1:9/x"]);
    expect((await routesOf(allowed, "http://127.0.0.1:9/x")).map((r) => r.url)).toEqual(["http://127.0.0.1:9/x"]);
    allowed.close();
    t.close();
  });
});

describe("WebhookTargets through a proxy", () => {
  test("the request goes by name for the proxy to resolve, after the check where the name resolves here", async () => {
    const { t } = targets(
      (host) => {
        if (host === "outside.example") throw new Error("queryA ENOTFOUND outside.example");
        return host === "inside.example" ? ["127.0.0.1"] : ["203.0.113.7"];
      },
      false,
      (scheme) => scheme === "https:",
    );
    // A proxied node may have no resolver for outside names: that is no refusal.
    expect(await routesOf(t, "https://outside.example/in")).toEqual([
      { url: "https://outside.example/in", address: null, host: "outside.example" },
    ]);
    expect(await routesOf(t, "https://public.example:8443/in")).toEqual([
      { url: "https://public.example:8443/in", address: null, host: "public.example:8443" },
    ]);
    expect(await t.route(new URL("https://inside.example/in"))).toEqual({
      refused: "refused: inside.example resolves to 127.0.0.1, this machine or link-local; --webhook-allow-loopback allows it",
    });
    expect(await t.route(new URL("https://127.0.0.1/in"))).toEqual({
      refused: "refused: 127.0.0.1 is this machine or link-local; --webhook-allow-loopback allows it",
    });
    // Plain http has no proxy here: it is pinned, and a name that does not resolve is refused.
    expect((await routesOf(t, "http://public.example/in"))[0]?.url).toBe("http://203.0.113.7/in");
    expect(await t.route(new URL("http://outside.example/in"))).toEqual({
      refused: "outside.example does not resolve: queryA ENOTFOUND outside.example",
    });
    t.close();
  });

  test("a proxy is configured by the variables Bun's fetch reads, in either case, for each scheme", () => {
    expect(proxyConfigured({}, "https:")).toBe(false);
    expect(proxyConfigured({ HTTPS_PROXY: "http://proxy:3128" }, "https:")).toBe(true);
    expect(proxyConfigured({ https_proxy: "http://proxy:3128" }, "https:")).toBe(true);
    expect(proxyConfigured({ HTTPS_PROXY: "http://proxy:3128" }, "http:")).toBe(false);
    expect(proxyConfigured({ http_proxy: "http://proxy:3128" }, "http:")).toBe(true);
    expect(proxyConfigured({ HTTP_PROXY: "" }, "http:")).toBe(false);
  });
});

describe("WebhookDispatcher sends where the check looked", () => {
  test("a name that rebinds to this machine after its check is not followed: the request went to the checked address", async () => {
    const { store, webhookId, enqueue } = outbox(databases, "https://rebind.example/hook");
    enqueue(1, "first");
    enqueue(1, "second");
    const receiver = new HeldReceiver();
    const answers = [["192.0.2.10"], ["127.0.0.1"]];
    let now = Date.now();
    const d = dispatcher(store, receiver, 1, { resolve: async () => answers.shift() ?? [], now: () => now });
    d.start();
    try {
      await until("the first sent", () => receiver.requests.length === 1);
      // The URL fetched names the address the check saw, so fetch makes no lookup of its own to be answered otherwise.
      expect(receiver.requests[0]).toMatchObject({ id: "msg_first", url: "https://192.0.2.10/hook", host: "rebind.example" });
      now += 30_001;
      receiver.requests[0]?.settle(200);
      await until("the second dead", () => store.deadLetters() === 1);
      expect(receiver.requests).toHaveLength(1);
      expect(store.deliveries(webhookId, "dead", 10)[0]?.last_error).toBe(
        "refused: rebind.example resolves to 127.0.0.1, this machine or link-local; --webhook-allow-loopback allows it",
      );
    } finally {
      await d.stop();
    }
  });

  test("the next address is tried only when the connection itself failed: nothing reached the receiver", async () => {
    const { store, webhookId, enqueue } = outbox(databases, "http://two.example/hook");
    enqueue(1, "refused-then-sent");
    enqueue(2, "reset");
    const tried: string[] = [];
    const fetch = ((url: string, init: RequestInit) => {
      const id = (init.headers as Record<string, string>)["webhook-id"];
      tried.push(`${id} ${url}`);
      const code = url.includes("192.0.2.10") ? (id === "msg_reset" ? "ECONNRESET" : "ECONNREFUSED") : null;
      return code === null
        ? Promise.resolve(new Response(null, { status: 204 }))
        : Promise.reject(Object.assign(new TypeError(`${code}: failed`), { code }));
    }) as unknown as typeof globalThis.fetch;
    const d = dispatcher(store, new HeldReceiver(), 1, { fetch, resolve: async () => ["192.0.2.10", "192.0.2.11"] });
    d.start();
    try {
      await until("both settled", () => store.backlog() === 0);
      expect(tried.sort()).toEqual([
        "msg_refused-then-sent http://192.0.2.10/hook",
        "msg_refused-then-sent http://192.0.2.11/hook",
        "msg_reset http://192.0.2.10/hook",
      ]);
      expect(store.deliveries(webhookId, "dead", 10).map((r) => [r.message_id, r.last_error])).toEqual([
        ["msg_reset", "ECONNRESET: failed"],
      ]);
    } finally {
      await d.stop();
    }
  });

  test("over real sockets: an address that refuses is passed over, and the receiver sees its name in Host", async () => {
    const hosts: (string | null)[] = [];
    using receiver = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch: (request) => {
        hosts.push(request.headers.get("host"));
        return new Response(null, { status: 204 });
      },
    });
    const { store, enqueue } = outbox(databases, `http://receiver.test:${receiver.port}/hook`);
    enqueue(1, "real");
    // 127.0.0.2 is on loopback too, but nothing listens there on that port.
    const d = dispatcher(store, new HeldReceiver(), 1, {
      fetch: globalThis.fetch,
      allowLoopback: true,
      resolve: async () => ["127.0.0.2", "127.0.0.1"],
    });
    d.start();
    try {
      await until("delivered", () => store.backlog() === 0);
      expect(store.deadLetters()).toBe(0);
      expect(hosts).toEqual([`receiver.test:${receiver.port}`]);
    } finally {
      await d.stop();
    }
  });
});
