/** The summary lines: each figure beside its target. */

export interface Summary {
  name: string;
  value: number;
  unit: string;
  digits: number;
  /** Absent for figures reported for context only. */
  target?: number;
  better?: "higher" | "lower";
}

export function formatRow(row: Summary): string {
  const value = `${row.value.toLocaleString("en", { minimumFractionDigits: row.digits, maximumFractionDigits: row.digits })}${row.unit === "" ? "" : ` ${row.unit}`}`;
  if (row.target === undefined) return `${row.name} ${value}`;
  const met = row.better === "higher" ? row.value >= row.target : row.value <= row.target;
  const target = `${row.better === "higher" ? ">=" : "<="} ${row.target.toLocaleString("en")}${row.unit === "" ? "" : ` ${row.unit}`}`;
  return `${row.name} ${value} (target ${target}) ${met ? "ok" : "MISSED"}`;
}
