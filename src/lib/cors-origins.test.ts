import { describe, expect, test } from "bun:test";
import { parseCorsOrigins } from "./cors-origins";

describe("parseCorsOrigins", () => {
  test("takes *, <origin> (any case) or a list of origins, lowercased", () => {
    expect(parseCorsOrigins("*", "x")).toBe("*");
    expect(parseCorsOrigins("<Origin>", "x")).toBe("<origin>");
    expect(parseCorsOrigins(" https://Admin.Example.com, http://localhost:3000 ", "x")).toEqual([
      "https://admin.example.com",
      "http://localhost:3000",
    ]);
  });

  test.each([
    ["", "is empty"],
    [" , ", "is empty"],
    ["admin.example.com", "is not an origin"],
    ["https://admin.example.com/", "is not an origin"],
    ["https://admin.example.com/path", "is not an origin"],
    ["ftp://files.example.com", "is not an origin"],
    ["https://a.example.com,*", "is not an origin"],
  ])("refuses %p: %s", (raw, reason) => {
    expect(() => parseCorsOrigins(raw, "--cors-allow-origin")).toThrow(reason);
  });
});
