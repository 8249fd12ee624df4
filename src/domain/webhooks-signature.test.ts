import { describe, expect, test } from "bun:test";
import { Webhook, WebhookVerificationError } from "standardwebhooks";
import { generateSecret, SECRET_PREFIX, secretKey, sign, signedHeaders } from "./webhooks-signature";

describe("webhook signatures", () => {
  test("a new secret is whsec_ and base64 of 32 random bytes, different every time", () => {
    const a = generateSecret();
    const b = generateSecret();
    expect(a.startsWith(SECRET_PREFIX)).toBe(true);
    expect(secretKey(a).length).toBe(32);
    expect(a).not.toBe(b);
  });

  test("matches the Standard Webhooks specification's HMAC-SHA256 of id.timestamp.body, computed independently", () => {
    const secret = generateSecret();
    const body = '{"type":"link.created","timestamp":"2026-12-03T06:00:00.000Z","data":{"a":1}}';
    const expected = new Bun.CryptoHasher("sha256", secretKey(secret)).update(`msg_abc.1764741600.${body}`).digest("base64");
    expect(sign(secret, "msg_abc", 1764741600, body)).toBe(`v1,${expected}`);
  });

  test("headers signed here verify with the official standardwebhooks library, and a changed body does not", () => {
    const secret = generateSecret();
    const body = JSON.stringify({ type: "link.visited", timestamp: new Date().toISOString(), data: { shortUrl: { shortCode: "abc" } } });
    const headers = signedHeaders([secret], "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", Math.floor(Date.now() / 1000), body);
    expect(new Webhook(secret).verify(body, headers)).toEqual(JSON.parse(body));
    expect(() => new Webhook(secret).verify(body.replace("abc", "abd"), headers)).toThrow(WebhookVerificationError);
    expect(() => new Webhook(generateSecret()).verify(body, headers)).toThrow(WebhookVerificationError);
  });

  test("several secrets give space-separated signatures, and a receiver holding either one verifies (rotation)", () => {
    const [current, old] = [generateSecret(), generateSecret()];
    const body = '{"type":"link.deleted"}';
    const headers = signedHeaders([current, old], "msg_x", Math.floor(Date.now() / 1000), body);
    expect(headers["webhook-signature"].split(" ")).toHaveLength(2);
    expect(new Webhook(current).verify(body, headers)).toEqual({ type: "link.deleted" });
    expect(new Webhook(old).verify(body, headers)).toEqual({ type: "link.deleted" });
  });

  test("refuses a secret without the whsec_ prefix", () => {
    expect(() => sign("c2VjcmV0", "msg_x", 1, "{}")).toThrow("whsec_");
  });
});
