import { describe, expect, test } from "bun:test";
import { createHmac } from "node:crypto";
import { grants, MercureTokens } from "./mercure-token";

const SECRET = Buffer.alloc(32, 7);
const NOW = Date.parse("2026-12-03T10:00:00Z");
const LATER = NOW + 86_400_000;

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
const sign = (input: string, secret = SECRET) => createHmac("sha256", secret).update(input).digest("base64url");

describe("MercureTokens", () => {
  const tokens = new MercureTokens(SECRET);

  test("issues an HS256 JWT with Shlink's claims that it then accepts until it expires", () => {
    const token = tokens.issue(7, LATER, NOW);
    const [header, payload] = token.split(".") as [string, string];
    expect(JSON.parse(Buffer.from(header, "base64url").toString())).toEqual({ alg: "HS256", typ: "JWT" });
    expect(JSON.parse(Buffer.from(payload, "base64url").toString())).toEqual({
      iss: "shortener",
      sub: "7",
      iat: NOW / 1000,
      exp: LATER / 1000,
      mercure: { subscribe: ["*"] },
    });
    const grant = tokens.verify(token, NOW + 1000);
    expect(grant).toEqual({ keyId: 7, subscribe: ["*"], expiresAt: LATER });
    expect(grants(grant as NonNullable<typeof grant>, "https://shlink.io/new-visit")).toBe(true);
    expect(tokens.verify(token, LATER)).toBeNull();
  });

  test("refuses a token signed by another process's secret", () => {
    expect(new MercureTokens(Buffer.alloc(32, 8)).verify(tokens.issue(7, LATER, NOW), NOW)).toBeNull();
  });

  test.each([
    [
      "a tampered payload",
      () => {
        const [h, , s] = tokens.issue(7, LATER, NOW).split(".");
        return `${h}.${b64({ sub: "7", exp: LATER / 1000 + 999_999, mercure: { subscribe: ["*"] } })}.${s}`;
      },
    ],
    ["alg none", () => `${b64({ alg: "none" })}.${b64({ sub: "7", exp: LATER / 1000, mercure: { subscribe: ["*"] } })}.`],
    [
      "alg HS512 signed with the right key",
      () => {
        const input = `${b64({ alg: "HS512" })}.${b64({ sub: "7", exp: LATER / 1000, mercure: { subscribe: ["*"] } })}`;
        return `${input}.${sign(input)}`;
      },
    ],
    [
      "no exp claim",
      () => {
        const input = `${b64({ alg: "HS256" })}.${b64({ sub: "7", mercure: { subscribe: ["*"] } })}`;
        return `${input}.${sign(input)}`;
      },
    ],
    [
      "no mercure.subscribe claim",
      () => {
        const input = `${b64({ alg: "HS256" })}.${b64({ sub: "7", exp: LATER / 1000 })}`;
        return `${input}.${sign(input)}`;
      },
    ],
    [
      "no sub claim (the API key it was issued to)",
      () => {
        const input = `${b64({ alg: "HS256" })}.${b64({ exp: LATER / 1000, mercure: { subscribe: ["*"] } })}`;
        return `${input}.${sign(input)}`;
      },
    ],
    ["two parts", () => tokens.issue(7, LATER, NOW).split(".").slice(0, 2).join(".")],
    ["garbage", () => "not-a-token"],
    ["an oversized token", () => `${tokens.issue(7, LATER, NOW)}${"A".repeat(5000)}`],
  ])("refuses %s", (_name, make) => {
    expect(tokens.verify(make(), NOW)).toBeNull();
  });

  test("a grant of listed topics allows only those", () => {
    expect(grants({ keyId: 7, subscribe: ["https://shlink.io/new-visit"], expiresAt: LATER }, "https://shlink.io/new-visit")).toBe(true);
    expect(grants({ keyId: 7, subscribe: ["https://shlink.io/new-visit"], expiresAt: LATER }, "https://shlink.io/new-orphan-visit")).toBe(
      false,
    );
  });
});
