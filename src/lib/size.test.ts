import { describe, expect, test } from "bun:test";
import { formatSize, parseSize } from "./size";

describe("parseSize", () => {
  test.each([
    ["1048576", 1_048_576],
    ["512MiB", 512 * 2 ** 20],
    ["1GiB", 2 ** 30],
    ["1 gib", 2 ** 30],
    ["100MB", 100_000_000],
    ["1.5KiB", 1536],
    ["1000TiB", 1000 * 2 ** 40],
    ["0", 0],
  ])("reads %p as %p bytes", (text, bytes) => {
    expect(parseSize(text)).toBe(bytes);
  });

  test.each(["", "MiB", "-1GiB", "1 GiBs", "1e9", "12 parsecs", "99999999999TiB"])("rejects %p", (text) => {
    expect(parseSize(text)).toBeNull();
  });
});

describe("formatSize", () => {
  test.each([
    [512, "512 B"],
    [12 * 2 ** 20, "12 MiB"],
    [512 * 2 ** 20, "512 MiB"],
    [1.25 * 2 ** 30, "1.3 GiB"],
    [1000 * 2 ** 40, "1000 TiB"],
  ])("writes %p bytes as %p", (bytes, text) => {
    expect(formatSize(bytes)).toBe(text);
  });
});
