import { describe, expect, test } from "bun:test";
import { AppError } from "../errors";
import { normalizeLongUrl } from "./long-url";

function rejection(raw: unknown): AppError {
  try {
    normalizeLongUrl(raw);
  } catch (error) {
    if (error instanceof AppError) return error;
    throw error;
  }
  throw new Error(`accepted ${String(raw)}`);
}

describe("normalizeLongUrl", () => {
  test("stores the WHATWG serialized form", () => {
    expect(normalizeLongUrl("HTTPS://Example.COM")).toBe("https://example.com/");
    expect(normalizeLongUrl("http://example.com/a/../b?q=1#f")).toBe("http://example.com/b?q=1#f");
  });

  test.each([
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "DATA:text/html;base64,PHNjcmlwdD4=",
    "vbscript:msgbox(1)",
    "VBScript:msgbox(1)",
    "\u0001javascript:alert(1)",
    " https://example.com",
    "\thttps://example.com",
    "https://exa\tmple.com",
    "https://example.com/\r\nSet-Cookie: x=1",
    "https://example.com/a\nb",
    "ftp://example.com/file",
    "file:///etc/passwd",
    "/relative/path",
    "",
  ])("rejects %p with invalid-data naming longUrl", (raw) => {
    const error = rejection(raw);
    expect(error.status).toBe(400);
    expect(error.code).toBe("invalid-data");
    expect(error.extras.invalidElements).toEqual(["longUrl"]);
  });

  test("rejects a 2049-byte URL and accepts one of 2048 bytes", () => {
    const base = "https://example.com/";
    expect(normalizeLongUrl(base + "a".repeat(2048 - base.length))).toHaveLength(2048);
    expect(rejection(base + "a".repeat(2049 - base.length)).extras.invalidElements).toEqual(["longUrl"]);
  });

  test("rejects a non-string", () => {
    expect(rejection(42).code).toBe("invalid-data");
  });
});
