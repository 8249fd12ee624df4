/**
 * What a PromQL expression reads: its series selectors (metric name and label matchers) and the labels it groups or
 * matches on. A scanner, not a parser: enough to check names against the metrics contract; promtool checks syntax.
 */

export interface LabelMatcher {
  label: string;
  op: "=" | "!=" | "=~" | "!~";
  value: string;
}

export interface Selector {
  /** Empty for a selector with no name before its braces, such as `{__name__=~"x.*"}`. */
  name: string;
  matchers: LabelMatcher[];
}

export interface ExprReads {
  selectors: Selector[];
  /** Labels of `by`, `without`, `on`, `ignoring`, `group_left` and `group_right` lists. */
  groupingLabels: string[];
}

const AGGREGATIONS = new Set([
  "sum",
  "min",
  "max",
  "avg",
  "group",
  "stddev",
  "stdvar",
  "count",
  "count_values",
  "bottomk",
  "topk",
  "quantile",
]);
const GROUPING = new Set(["by", "without", "on", "ignoring", "group_left", "group_right"]);
const KEYWORDS = new Set(["and", "or", "unless", "bool", "offset", "atan2", "inf", "nan"]);
const IDENT = /^[A-Za-z_:][A-Za-z0-9_:]*/;
const LABEL = /^[A-Za-z_][A-Za-z0-9_]*/;
const NUMBER = /^(0x[0-9a-f]+|(\d+\.?\d*|\.\d+)(e[+-]?\d+)?[a-z0-9]*)/i;

/** The selectors and grouping labels of `expr`; throws on a label matcher it cannot read. */
export function scanPromQL(expr: string): ExprReads {
  const selectors: Selector[] = [];
  const groupingLabels: string[] = [];
  let i = 0;
  const fail = (what: string): never => {
    throw new Error(`cannot read ${what} at offset ${i} of: ${expr}`);
  };
  const skipSpace = () => {
    while (i < expr.length && /\s/.test(expr[i] as string)) i++;
  };
  const readString = (): string => {
    const quote = expr[i];
    let value = "";
    for (i++; i < expr.length && expr[i] !== quote; i++) {
      if (expr[i] === "\\" && quote !== "`") i++;
      value += expr[i];
    }
    if (i >= expr.length) fail("a closed string");
    i++;
    return value;
  };
  const readMatchers = (): LabelMatcher[] => {
    const matchers: LabelMatcher[] = [];
    i++; // past "{"
    for (;;) {
      skipSpace();
      if (expr[i] === "}") {
        i++;
        return matchers;
      }
      if (expr[i] === ",") {
        i++;
        continue;
      }
      const label = LABEL.exec(expr.slice(i))?.[0] ?? fail("a label name");
      i += label.length;
      skipSpace();
      const op = (/^(=~|!~|!=|=)/.exec(expr.slice(i))?.[0] ?? fail("a matcher operator")) as LabelMatcher["op"];
      i += op.length;
      skipSpace();
      if (!"\"'`".includes(expr[i] ?? "")) fail("a quoted label value");
      matchers.push({ label, op, value: readString() });
    }
  };
  const readLabelList = (): string[] => {
    skipSpace();
    if (expr[i] !== "(") return [];
    const close = expr.indexOf(")", i);
    if (close < 0) fail("a closed label list");
    const labels = expr
      .slice(i + 1, close)
      .split(",")
      .map((l) => l.trim())
      .filter((l) => l !== "");
    i = close + 1;
    return labels;
  };

  while (i < expr.length) {
    const c = expr[i] as string;
    if (/\s/.test(c)) i++;
    else if (c === "#") i = expr.includes("\n", i) ? expr.indexOf("\n", i) : expr.length;
    else if (c === '"' || c === "'" || c === "`") readString();
    else if (c === "[")
      i = expr.indexOf("]", i) + 1 || expr.length; // a range or subquery: durations only
    else if (c === "{") selectors.push({ name: "", matchers: readMatchers() });
    else if (/[0-9.]/.test(c)) i += NUMBER.exec(expr.slice(i))?.[0].length ?? 1;
    else if (IDENT.test(expr.slice(i))) {
      const word = IDENT.exec(expr.slice(i))?.[0] as string;
      i += word.length;
      const lower = word.toLowerCase();
      if (GROUPING.has(lower)) {
        groupingLabels.push(...readLabelList());
        continue;
      }
      if (KEYWORDS.has(lower) || AGGREGATIONS.has(lower)) continue;
      let next = i;
      while (next < expr.length && /\s/.test(expr[next] as string)) next++;
      if (expr[next] === "(") continue; // a function call
      if (expr[next] === "{") {
        i = next;
        selectors.push({ name: word, matchers: readMatchers() });
      } else {
        selectors.push({ name: word, matchers: [] });
      }
    } else i++; // operators, parentheses, commas
  }
  return { selectors, groupingLabels };
}
