import { describe, expect, test } from "bun:test";
import { deviceOf, parseRedirectRulesInput, type RedirectRuleInput, ruleTarget } from "./redirect-rules";

describe("deviceOf", () => {
  test.each([
    ["Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36", "android"],
    ["Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", "android"],
    ["Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148", "ios"],
    ["Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148", "ios"],
    ["Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0", "desktop"],
    ["Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15", "desktop"],
    ["curl/8.5.0", "desktop"],
    ["", "desktop"],
    [null, "desktop"],
    ["Mozilla/5.0 (Mobile; rv:48.0) Gecko/48.0 Firefox/48.0 KAIOS/2.5", null],
  ])("%p is %p", (ua, device) => {
    expect(deviceOf(ua)).toBe(device as ReturnType<typeof deviceOf>);
  });
});

describe("ruleTarget", () => {
  const rules: RedirectRuleInput[] = parseRedirectRulesInput({
    redirectRules: [
      { longUrl: "https://example.com/us", conditions: [{ type: "language", matchKey: null, matchValue: "EN_us" }] },
      { longUrl: "https://example.com/fr", conditions: [{ type: "language", matchKey: null, matchValue: "fr" }] },
      { longUrl: "https://example.com/beta", conditions: [{ type: "query-param", matchKey: "beta", matchValue: "" }] },
    ],
  });
  const at = (acceptLanguage: string | null, url = "https://s.test/abc") =>
    ruleTarget(rules, { userAgent: null, acceptLanguage, url }, "default");

  test.each([
    ["en-US", "https://example.com/us"],
    ["en-us;q=0.1", "https://example.com/us"],
    ["en", "default"],
    ["en-GB", "default"],
    ["de-DE, fr-CA;q=0.5", "https://example.com/fr"],
    [" FR ", "https://example.com/fr"],
    ["*", "default"],
    ["", "default"],
    [null, "default"],
  ])("Accept-Language %p goes to %p", (header, expected) => {
    expect(at(header)).toBe(expected);
  });

  test("a query-param rule wants the parameter with that value: an empty value is a value", () => {
    expect(at(null, "https://s.test/abc?beta=")).toBe("https://example.com/beta");
    expect(at(null, "https://s.test/abc?beta")).toBe("https://example.com/beta");
    expect(at(null, "https://s.test/abc?beta=1")).toBe("default");
    expect(at(null, "https://s.test/abc")).toBe("default");
  });

  test("the stored value of a device condition is lower case, as Shlink compares it", () => {
    const [rule] = parseRedirectRulesInput({
      redirectRules: [{ longUrl: "https://example.com/", conditions: [{ type: "device", matchKey: null, matchValue: "IOS" }] }],
    });
    expect(rule?.conditions).toEqual([{ type: "device", matchKey: null, matchValue: "ios" }]);
  });
});
