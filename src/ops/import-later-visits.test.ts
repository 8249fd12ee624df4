import { describe, expect, test } from "bun:test";
import { batchSourceName, CoveredIds } from "./import-later-visits";

const PREFIX = "import-db:links-7:visits-";

/** The ids in 1..`through` that `covered` says are in a range, asked in rising order. */
function coveredIds(covered: CoveredIds, through: number): number[] {
  return Array.from({ length: through }, (_, i) => i + 1).filter((id) => covered.has(id));
}

describe("CoveredIds", () => {
  test("names nothing: no id is covered", () => {
    expect(coveredIds(new CoveredIds([], PREFIX), 5)).toEqual([]);
  });

  test("ranges written by runs with other cuts, nested and overlapping, named in text order, cover every id between their ends", () => {
    // Text order is not number order: 10-12 sorts before 3-4 and 9-20.
    const names = ["10-12", "3-4", "9-20", "15-16", "30-30", "5-5"].map((range) => `${PREFIX}${range}`);
    expect(coveredIds(new CoveredIds(names, PREFIX), 35)).toEqual([3, 4, 5, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 30]);
  });

  test("a name that is not a range is passed over", () => {
    expect(coveredIds(new CoveredIds([`${PREFIX}2-3`, `${PREFIX}x-9`, `${PREFIX}4`], PREFIX), 10)).toEqual([2, 3]);
  });
});

test("the ledger names a file by its lineage, whatever the link cut; a file older than lineages by the link cut", () => {
  expect(batchSourceName("0f1e2d3c4b5a69788796a5b4c3d2e1f0", 7)).toBe("lineage-0f1e2d3c4b5a69788796a5b4c3d2e1f0");
  expect(batchSourceName("0f1e2d3c4b5a69788796a5b4c3d2e1f0", 6)).toBe("lineage-0f1e2d3c4b5a69788796a5b4c3d2e1f0");
  expect(batchSourceName(null, 7)).toBe("links-7");
});
