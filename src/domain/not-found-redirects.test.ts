import { describe, expect, test } from "bun:test";
import { fillPlaceholders, parseDomainRedirectsInput } from "./not-found-redirects";

describe("fillPlaceholders", () => {
  test.each([
    ["https://example.com/home", "s.test", "/a", "https://example.com/home"],
    [
      "https://example.com/missing{ORIGINAL_PATH}?from={DOMAIN}",
      "s.test:8080",
      "/a/b",
      "https://example.com/missing/a/b?from=s.test%3A8080",
    ],
    ["https://example.com/{DOMAIN}/{ORIGINAL_PATH}", "s.test", "/x", "https://example.com/s.test/x"],
    ["https://example.com/go?to={ORIGINAL_PATH}", "s.test", "/a b/c", "https://example.com/go?to=%2Fa%20b%2Fc"],
  ])("%p for %p %p is %p", (redirect, domain, path, expected) => {
    expect(fillPlaceholders(redirect, domain, path)).toBe(expected);
  });

  test("a path that starts with // cannot move the redirect to another host", () => {
    const filled = fillPlaceholders("https://example.com/{ORIGINAL_PATH}", "s.test", "//evil.example/x");
    expect(new URL(filled).host).toBe("example.com");
    expect(filled).toBe("https://example.com/evil.example/x");
  });
});

describe("parseDomainRedirectsInput", () => {
  test.each(["https://{DOMAIN}/home", "https://example.com{ORIGINAL_PATH}"])(
    "a placeholder in the host (%p) is refused: it would be sent literally",
    (redirect) => {
      expect(() => parseDomainRedirectsInput({ domain: "s.test", baseUrlRedirect: redirect })).toThrow(
        "baseUrlRedirect: placeholders ({DOMAIN}, {ORIGINAL_PATH}) go in the path or the query, not the host",
      );
    },
  );

  test("null or an empty string clears a redirect; a field left out is not in the changes", () => {
    expect(parseDomainRedirectsInput({ domain: "S.Test", baseUrlRedirect: null, regular404Redirect: "" })).toEqual({
      domain: "s.test",
      changes: { baseUrlRedirect: null, regular404Redirect: null },
    });
  });
});
