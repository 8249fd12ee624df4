import { describe, expect, test } from "bun:test";
import type { Server } from "bun";
import { type Cidr, parseCidr } from "../lib/cidr";
import { clientIpResolver } from "./request-context";

const cidrs = (...texts: string[]) => texts.map((t) => parseCidr(t) as Cidr);
function serverWithPeer(address: string) {
  let asked = 0;
  const server = {
    requestIP: () => {
      asked++;
      return { address, family: "IPv4", port: 1 };
    },
  } as unknown as Server<undefined>;
  return { server, asked: () => asked };
}
const request = (forwarded?: string) =>
  new Request("http://s.example/x", { headers: forwarded === undefined ? {} : { "X-Forwarded-For": forwarded } });

describe("clientIpResolver", () => {
  test("logs no client IP and never asks for the peer when no proxy is trusted", () => {
    const peer = serverWithPeer("203.0.113.5");
    expect(clientIpResolver("0.0.0.0", [])(request("198.51.100.1"), peer.server)).toBeNull();
    expect(peer.asked()).toBe(0);
  });

  test("takes the right-most untrusted hop only from a trusted peer", () => {
    const resolve = clientIpResolver("0.0.0.0", cidrs("10.0.0.0/8"));
    expect(resolve(request("198.51.100.1, 10.1.2.3"), serverWithPeer("10.0.0.9").server)).toBe("198.51.100.1");
    expect(resolve(request("198.51.100.1"), serverWithPeer("203.0.113.5").server)).toBeNull();
    expect(resolve(request("not-an-ip"), serverWithPeer("10.0.0.9").server)).toBe("10.0.0.9");
    // Hops are read from the right: one that is no address ends the search, whatever is left of it.
    expect(resolve(request(`198.51.100.1, ${"x".repeat(10_000)}, 10.1.2.3`), serverWithPeer("10.0.0.9").server)).toBe("10.0.0.9");
  });

  test("behind a trusted local proxy on a loopback listener, never asks for the peer when the header is there", () => {
    const resolve = clientIpResolver("127.0.0.1", cidrs("127.0.0.0/8"));
    const peer = serverWithPeer("127.0.0.1");
    expect(resolve(request("198.51.100.7"), peer.server)).toBe("198.51.100.7");
    expect(peer.asked()).toBe(0);
    expect(resolve(request(), peer.server)).toBe("127.0.0.1");
    expect(peer.asked()).toBe(1);
  });

  test("asks for the peer on a loopback listener when only part of loopback is trusted", () => {
    const resolve = clientIpResolver("127.0.0.1", cidrs("127.0.0.1"));
    const peer = serverWithPeer("127.0.0.2");
    expect(resolve(request("198.51.100.7"), peer.server)).toBeNull();
    expect(peer.asked()).toBe(1);
  });
});
