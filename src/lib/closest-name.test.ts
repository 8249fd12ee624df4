import { expect, test } from "bun:test";
import { closestName, editDistance } from "./closest-name";

test("editDistance counts insertions, deletions and substitutions", () => {
  expect(editDistance("", "")).toBe(0);
  expect(editDistance("LISTEN", "LISTEN")).toBe(0);
  expect(editDistance("LISTN", "LISTEN")).toBe(1);
  expect(editDistance("LISTEN_", "LISTEN")).toBe(1);
  expect(editDistance("LISTEM", "LISTEN")).toBe(1);
  expect(editDistance("kitten", "sitting")).toBe(3);
  expect(editDistance("", "abc")).toBe(3);
});

test("closestName offers the nearest candidate within the limit, else null", () => {
  const names = ["SHORTENER_LISTEN", "SHORTENER_OPS_LISTEN", "SHORTENER_DATA_DIR"];
  expect(closestName("SHORTENER_LISTN", names, 3)).toBe("SHORTENER_LISTEN");
  expect(closestName("SHORTENER_OPS_LISTN", names, 3)).toBe("SHORTENER_OPS_LISTEN");
  expect(closestName("SHORTENER_DATADIR", names, 3)).toBe("SHORTENER_DATA_DIR");
  expect(closestName("SHORTENER_SOMETHING_ELSE", names, 3)).toBeNull();
  expect(closestName("x", [], 3)).toBeNull();
});
