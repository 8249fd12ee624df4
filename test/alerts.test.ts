/**
 * The Prometheus rules and the Grafana dashboard in deploy/, checked with the real promtool (installed into
 * .tools/bin by scripts/setup-tools.ts) and against the metrics contract in test/support/metric-names.ts:
 * the rules load, their unit tests pass, every alert can be acted on (severity, text, runbook), and neither file
 * reads a metric or label that /metrics does not promise.
 */
import { describe, expect, test } from "bun:test";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { tempDir } from "./support/binary";
import { DURATION_BUCKETS, LABEL_VALUES, METRICS, seriesNames } from "./support/metric-names";
import { scanPromQL } from "./support/promql";
import { toolPath } from "./support/tools";

const ROOT = resolve(import.meta.dir, "..");
const RULES = "deploy/prometheus/alerts.yml";
const RULE_TESTS = "deploy/prometheus/alerts.test.yml";
const DASHBOARD = "deploy/grafana/shortener.json";
/** The runbooks written for this alerts: the groups below must use exactly these. */
const INCIDENT_RUNBOOKS = ["disk-filling", "draining-a-node", "high-5xx-rate", "high-latency", "process-wont-start"];
const INCIDENT_GROUPS = ["shortener-slo-alerts", "shortener-http", "shortener-node", "shortener-visits"];
/** Groups of later issues, and the runbooks their alerts must lead to. */
const GROUP_RUNBOOKS: Record<string, string[]> = {
  "shortener-replication": ["lease-not-renewed", "promote-standby", "replication-lag", "standby-behind"],
  "shortener-drills": ["failed-restore-drill"],
  "shortener-webhooks": ["webhook-failures"],
};
/** Series Prometheus itself adds for every target, with their labels. */
const PROMETHEUS_SERIES: Record<string, readonly string[]> = { up: ["job", "instance"] };
const TARGET_LABELS = ["job", "instance"];

interface Rule {
  record?: string;
  alert?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
interface RuleFile {
  groups: { name: string; rules: Rule[] }[];
}
interface ExpectedAlert {
  exp_labels?: Record<string, string>;
  exp_annotations?: Record<string, string>;
}
interface RuleTestFile {
  rule_files: string[];
  group_eval_order?: string[];
  tests: { name?: string; alert_rule_test?: { eval_time: string; alertname: string; exp_alerts?: ExpectedAlert[] }[] }[];
}
interface Target {
  expr?: string;
  refId?: string;
  datasource?: { type?: string; uid?: string };
}
interface Panel {
  id?: number;
  type?: string;
  title?: string;
  gridPos?: { x: number; y: number; w: number; h: number };
  datasource?: { type?: string; uid?: string };
  targets?: Target[];
  panels?: Panel[];
}
interface Dashboard {
  id?: number | null;
  uid?: string;
  title?: string;
  schemaVersion?: number;
  panels?: Panel[];
  templating?: { list: { name: string; type: string; query?: unknown; datasource?: { uid?: string } }[] };
}

const read = (path: string) => readFileSync(join(ROOT, path), "utf8");
const rules = Bun.YAML.parse(read(RULES)) as RuleFile;
const ruleTests = Bun.YAML.parse(read(RULE_TESTS)) as RuleTestFile;
const dashboard = JSON.parse(read(DASHBOARD)) as Dashboard;

const allRules = rules.groups.flatMap((g) => g.rules.map((rule) => ({ group: g.name, rule })));
const alerts = allRules.filter(({ rule }) => rule.alert !== undefined);
const recorded = new Set(allRules.flatMap(({ rule }) => (rule.record === undefined ? [] : [rule.record])));
/** Every panel, rows' nested panels included. */
const panels: Panel[] = (dashboard.panels ?? []).flatMap((p) => [p, ...(p.panels ?? [])]);
const queryPanels = panels.filter((p) => p.type !== "row");
/** The data source uid every query names; Grafana, not JavaScript, expands it. */
const DS_UID = ["$", "{DS_PROMETHEUS}"].join("");
/** Values for Grafana's variables when a dashboard query is checked as plain PromQL. */
const GRAFANA_VARIABLES: Record<string, string> = { __rate_interval: "5m", __interval: "1m", __range: "1h", instance: ".+" };

async function promtool(...args: string[]): Promise<{ exitCode: number; output: string }> {
  const proc = Bun.spawn([toolPath("promtool"), ...args], { cwd: ROOT, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, exitCode] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { exitCode, output: `${stdout}${stderr}`.trim() };
}

/** Where `expr` reads a metric or label outside the contract, or a contract metric of another job. */
function contractViolations(where: string, expr: string): string[] {
  const problems: string[] = [];
  const knownLabels = new Set([...TARGET_LABELS, "le", ...METRICS.flatMap((m) => m.labels)]);
  const { selectors, groupingLabels } = scanPromQL(expr);
  for (const label of groupingLabels) if (!knownLabels.has(label)) problems.push(`${where}: groups by ${label}, which no metric has`);
  for (const { name, matchers } of selectors) {
    if (recorded.has(name)) continue;
    const metric = METRICS.find((m) => seriesNames(m).includes(name));
    const labels = metric ? [...TARGET_LABELS, ...metric.labels, ...(name.endsWith("_bucket") ? ["le"] : [])] : PROMETHEUS_SERIES[name];
    if (labels === undefined) {
      problems.push(`${where}: reads ${name || "a nameless selector"}, which is not in test/support/metric-names.ts`);
      continue;
    }
    const job = matchers.find((m) => m.label === "job");
    if (job?.op !== "=" || job.value !== "shortener") problems.push(`${where}: reads ${name} without job="shortener"`);
    for (const { label, op, value } of matchers) {
      if (!labels.includes(label)) problems.push(`${where}: ${name} has no label ${label}`);
      const values = label === "le" ? DURATION_BUCKETS : LABEL_VALUES[label];
      if (values !== undefined && (op === "=" || op === "!=") && !values.includes(value)) {
        problems.push(`${where}: ${name}{${label}${op}"${value}"} matches a value the contract does not name`);
      }
    }
  }
  return problems;
}

/** Dashboard queries with Grafana's variables replaced, as Prometheus would receive them. */
function asPromQL(expr: string): string {
  return expr.replace(/\$\{?(\w+)\}?/g, (_, name: string) => {
    const value = GRAFANA_VARIABLES[name];
    if (value === undefined) throw new Error(`unknown Grafana variable $${name} in: ${expr}`);
    return value;
  });
}

describe("the PromQL scanner used for the contract checks", () => {
  test("finds metric names and label matchers, and skips functions, keywords, strings and durations", () => {
    const reads = scanPromQL(
      'histogram_quantile(0.99, sum by (le, route) (rate(a_bucket{route="/{x}",le!~"0.1|1"}[5m] offset 1h))) > bool 1e-4 and on (job) b unless c{job="j"} or vector(0)',
    );
    expect(reads.selectors).toEqual([
      {
        name: "a_bucket",
        matchers: [
          { label: "route", op: "=", value: "/{x}" },
          { label: "le", op: "!~", value: "0.1|1" },
        ],
      },
      { name: "b", matchers: [] },
      { name: "c", matchers: [{ label: "job", op: "=", value: "j" }] },
    ]);
    expect(reads.groupingLabels).toEqual(["le", "route", "job"]);
  });

  test("reports a metric outside the contract, a label it lacks and a selector without the job", () => {
    expect(
      contractViolations(
        "x",
        'rate(http_requests_total{job="shortener",path="/"}[5m]) + shortener_nope{job="shortener"} + shortener_ready',
      ),
    ).toEqual([
      "x: http_requests_total has no label path",
      "x: reads shortener_nope, which is not in test/support/metric-names.ts",
      'x: reads shortener_ready without job="shortener"',
    ]);
  });
});

describe(RULES, () => {
  test("promtool check rules accepts it", async () => {
    const { exitCode, output } = await promtool("check", "rules", RULES);
    expect({ exitCode, output }).toMatchObject({ exitCode: 0, output: expect.stringContaining("SUCCESS") });
  });

  test("passes its unit tests: promtool test rules alerts.test.yml", async () => {
    const { exitCode, output } = await promtool("test", "rules", RULE_TESTS);
    expect({ exitCode, output }).toMatchObject({ exitCode: 0, output: expect.stringContaining("SUCCESS") });
  });

  test("every alert has a page or ticket severity, a summary, a description and a runbook_url runbooks/<name>.md", () => {
    expect(alerts.length).toBeGreaterThan(0);
    const problems = alerts.flatMap(({ rule }) => {
      const out: string[] = [];
      if (!["page", "ticket"].includes(rule.labels?.severity ?? "")) out.push(`${rule.alert}: severity ${rule.labels?.severity}`);
      for (const key of ["summary", "description"]) if (!rule.annotations?.[key]?.trim()) out.push(`${rule.alert}: no ${key}`);
      if (!/^runbooks\/[a-z0-9-]+\.md$/.test(rule.annotations?.runbook_url ?? ""))
        out.push(`${rule.alert}: runbook_url ${rule.annotations?.runbook_url}`);
      return out;
    });
    expect(problems).toEqual([]);
  });

  test("its incident alerts lead to exactly the five incident runbooks, and every runbook named exists", () => {
    const runbookOf = (rule: Rule) => /^runbooks\/(.+)\.md$/.exec(rule.annotations?.runbook_url ?? "")?.[1];
    const incident = new Set(alerts.filter(({ group }) => INCIDENT_GROUPS.includes(group)).map(({ rule }) => runbookOf(rule)));
    expect([...incident].sort()).toEqual(INCIDENT_RUNBOOKS);
    const missing = alerts.map(({ rule }) => rule.annotations?.runbook_url ?? "").filter((path) => !existsSync(join(ROOT, path)));
    expect(missing).toEqual([]);
  });

  test.each(Object.entries(GROUP_RUNBOOKS))("the %s alerts lead to exactly the runbooks %p", (name, runbooks) => {
    const runbookOf = (rule: Rule) => /^runbooks\/(.+)\.md$/.exec(rule.annotations?.runbook_url ?? "")?.[1];
    const used = new Set(alerts.filter(({ group }) => group === name).map(({ rule }) => runbookOf(rule)));
    expect([...used].sort()).toEqual(runbooks);
  });

  test("every alerting rule has a unit test where it fires and one where its alert stays silent", () => {
    const cases = ruleTests.tests.flatMap((t) => t.alert_rule_test ?? []);
    const problems = alerts.flatMap(({ rule }) => {
      const out: string[] = [];
      const name = rule.alert as string;
      const fired = cases.some(
        (c) =>
          c.alertname === name &&
          (c.exp_alerts ?? []).some((a) => Object.entries(rule.labels ?? {}).every(([k, v]) => a.exp_labels?.[k] === v)),
      );
      if (!fired) out.push(`${name} ${JSON.stringify(rule.labels)}: no test expects it to fire`);
      if (!cases.some((c) => c.alertname === name && (c.exp_alerts ?? []).length === 0))
        out.push(`${name}: no test expects it to stay silent`);
      return out;
    });
    expect(problems).toEqual([]);
  });

  test("its unit tests evaluate every group in file order, so alerts read recorded ratios of the same minute", () => {
    expect(ruleTests.rule_files).toEqual(["alerts.yml"]);
    expect(ruleTests.group_eval_order).toEqual(rules.groups.map((g) => g.name));
  });

  test("reads only metrics and labels of the contract, each of job shortener", () => {
    expect(allRules.flatMap(({ rule }) => contractViolations(rule.alert ?? rule.record ?? "?", rule.expr))).toEqual([]);
  });

  test("every recording rule is read by an alert or the dashboard", () => {
    const read = new Set(
      [...alerts.map(({ rule }) => rule.expr), ...queryPanels.flatMap((p) => (p.targets ?? []).map((t) => t.expr ?? ""))].flatMap((e) =>
        scanPromQL(asPromQL(e)).selectors.map((s) => s.name),
      ),
    );
    expect([...recorded].filter((name) => !read.has(name))).toEqual([]);
  });
});

describe(DASHBOARD, () => {
  test("is dashboard JSON Grafana imports: no fixed id, a uid, a title, a schemaVersion and panels", () => {
    expect(dashboard).toMatchObject({ id: null, uid: "shortener", title: "shortener" });
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(36);
    expect(queryPanels.length).toBeGreaterThan(0);
  });

  test("queries Prometheus only through its DS_PROMETHEUS data source variable", () => {
    const variables = dashboard.templating?.list ?? [];
    expect(variables.find((v) => v.name === "DS_PROMETHEUS")).toMatchObject({ type: "datasource", query: "prometheus" });
    const elsewhere = [
      ...queryPanels.filter((p) => p.datasource?.uid !== DS_UID).map((p) => `panel ${p.title}`),
      ...queryPanels.flatMap((p) => (p.targets ?? []).filter((t) => t.datasource?.uid !== DS_UID).map((t) => `${p.title} ${t.refId}`)),
      ...variables.filter((v) => v.type === "query" && v.datasource?.uid !== DS_UID).map((v) => `variable ${v.name}`),
    ];
    expect(elsewhere).toEqual([]);
  });

  test("every panel has a unique id and a gridPos inside the 24 columns, and no two panels overlap", () => {
    const ids = panels.map((p) => p.id);
    expect(ids.filter((id) => typeof id !== "number")).toEqual([]);
    expect(new Set(ids).size).toBe(ids.length);
    const outside = panels.filter(({ gridPos: g }) => !g || g.x < 0 || g.y < 0 || g.w < 1 || g.h < 1 || g.x + g.w > 24).map((p) => p.title);
    expect(outside).toEqual([]);
    const overlaps: string[] = [];
    panels.forEach((a, i) => {
      for (const b of panels.slice(i + 1)) {
        const [p, q] = [a.gridPos, b.gridPos] as { x: number; y: number; w: number; h: number }[];
        if (p && q && p.x < q.x + q.w && q.x < p.x + p.w && p.y < q.y + q.h && q.y < p.y + p.h) overlaps.push(`${a.title} / ${b.title}`);
      }
    });
    expect(overlaps).toEqual([]);
  });

  test("every panel but a row has queries, each with an expr and a refId unique within its panel", () => {
    const problems = queryPanels.flatMap((p) => {
      const targets = p.targets ?? [];
      const refIds = targets.map((t) => t.refId);
      return [
        ...(targets.length === 0 ? [`${p.title}: no targets`] : []),
        ...targets.filter((t) => !t.expr?.trim() || !t.refId).map((t) => `${p.title}: a target without expr or refId (${t.refId})`),
        ...(new Set(refIds).size === refIds.length ? [] : [`${p.title}: refIds repeat`]),
      ];
    });
    expect(problems).toEqual([]);
  });

  test("every query parses: promtool check rules accepts them as recording rules", async () => {
    const queries = queryPanels.flatMap((p) =>
      (p.targets ?? []).map((t) => ({ record: `dashboard:panel_${p.id}:${t.refId}`, expr: asPromQL(t.expr ?? "") })),
    );
    const dir = tempDir("shortener-dashboard-");
    try {
      const file = join(dir, "dashboard-queries.yml");
      writeFileSync(file, JSON.stringify({ groups: [{ name: "dashboard", rules: queries }] }));
      const { exitCode, output } = await promtool("check", "rules", file);
      expect({ exitCode, output }).toMatchObject({
        exitCode: 0,
        output: expect.stringContaining(`SUCCESS: ${queries.length} rules found`),
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("reads only metrics and labels of the contract, each of job shortener", () => {
    const queries = queryPanels.flatMap((p) => (p.targets ?? []).map((t) => [`${p.title} ${t.refId}`, asPromQL(t.expr ?? "")] as const));
    const variables = (dashboard.templating?.list ?? []).flatMap((v) => {
      const selector = /^label_values\((.+),\s*\w+\)$/.exec(typeof v.query === "string" ? v.query : "")?.[1];
      return selector === undefined ? [] : [[`variable ${v.name}`, selector] as const];
    });
    expect(variables.length).toBeGreaterThan(0);
    expect([...queries, ...variables].flatMap(([where, expr]) => contractViolations(where, expr))).toEqual([]);
  });

  test("shows the golden signals: traffic, errors, latency, and every saturation metric", () => {
    const shown = new Set(
      queryPanels.flatMap((p) => (p.targets ?? []).flatMap((t) => scanPromQL(asPromQL(t.expr ?? "")).selectors.map((s) => s.name))),
    );
    const signals = [
      "http_requests_total",
      "shortener_redirects_total",
      "http_request_errors_total",
      "http_request_duration_seconds_bucket",
      "http_requests_in_flight",
      "shortener_event_loop_lag_seconds",
      "process_resident_memory_bytes",
      "shortener_open_connections",
      "shortener_disk_free_bytes",
      "shortener_database_size_bytes",
      "shortener_wal_size_bytes",
      "shortener_visit_buffer_depth",
      "shortener_cache_hits_total",
      "shortener_cache_misses_total",
    ];
    expect(signals.filter((name) => !shown.has(name))).toEqual([]);
  });
});
