import { expect, test } from "bun:test";
import { normalizeTagName } from "./tag-name";

test("normalizeTagName trims, lower-cases and turns each space into a dash, as Shlink", () => {
  expect(normalizeTagName("Foo Bar")).toBe("foo-bar");
  expect(normalizeTagName("  Foo Bar \n")).toBe("foo-bar");
  expect(normalizeTagName("a  b")).toBe("a--b");
  expect(normalizeTagName("ÉTÉ Ünïcode")).toBe("été-ünïcode");
  expect(normalizeTagName("already-normal")).toBe("already-normal");
});

test("normalizeTagName leaves other whitespace inside a name, and markup, as they are", () => {
  expect(normalizeTagName("tab\there")).toBe("tab\there");
  expect(normalizeTagName("no\u00a0break")).toBe("no\u00a0break");
  expect(normalizeTagName("<b>Bold</b>")).toBe("<b>bold</b>");
});

test("normalizeTagName changes nothing the second time", () => {
  for (const name of ["Foo Bar", " x ", "İstanbul", "ΣΟΦΟΣ"]) {
    expect(normalizeTagName(normalizeTagName(name))).toBe(normalizeTagName(name));
  }
});
