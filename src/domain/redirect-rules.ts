/**
 * Shlink's dynamic redirect rules (`/short-urls/{shortCode}/redirect-rules`): a link's ordered rules, each a long
 * URL and conditions that must all hold; a redirect goes to the first rule that matches, else to the link's own long
 * URL. The conditions are those of Shlink 4.0, the version /rest/health reports: device, language, query-param.
 * Parsing the API's input, and matching a request, live here; storage and HTTP do not.
 */
import Bowser from "bowser";
import { type InvalidElement, invalidData } from "../errors";
import type { RedirectRuleRow } from "../storage/redirect-rule-store";
import { checkLongUrl } from "./long-url";

export const CONDITION_TYPES = ["device", "language", "query-param"] as const;
export type ConditionType = (typeof CONDITION_TYPES)[number];
export const DEVICES = ["android", "ios", "desktop"] as const;
export type Device = (typeof DEVICES)[number];

/** Condition types of later Shlink versions, refused with a reason rather than as unknown. */
const LATER_TYPES = new Set([
  "any-value-query-param",
  "valueless-query-param",
  "ip-address",
  "geolocation-country-code",
  "geolocation-city-name",
  "before-date",
  "after-date",
  "browser",
]);

export const MAX_RULES = 100;
export const MAX_CONDITIONS = 20;
const MAX_MATCH_LENGTH = 512;
/** A language tag as Accept-Language carries it: `en`, `en-US`, `zh-Hant-TW` (`_` is read as `-`, as Shlink does). */
const LANGUAGE_TAG = /^[a-z]{1,8}(?:[-_][a-z0-9]{1,8})*$/i;

export interface RedirectCondition {
  type: ConditionType;
  /** The query parameter's name for `query-param`, else null. */
  matchKey: string | null;
  matchValue: string;
}

export interface RedirectRuleInput {
  longUrl: string;
  conditions: RedirectCondition[];
}

/** A stored rule; priority 1 is tried first. */
export interface RedirectRule extends RedirectRuleInput {
  priority: number;
}

type Body = Record<string, unknown>;
const isObject = (value: unknown): value is Body => value !== null && typeof value === "object" && !Array.isArray(value);

function parseCondition(raw: unknown, field: string, problems: InvalidElement[]): RedirectCondition | null {
  if (!isObject(raw)) {
    problems.push({ field, reason: "must be an object with type, matchKey and matchValue" });
    return null;
  }
  const { type, matchKey, matchValue } = raw;
  if (typeof type !== "string" || !(CONDITION_TYPES as readonly string[]).includes(type)) {
    const reason = LATER_TYPES.has(type as string)
      ? `"${type}" is a condition of a later Shlink version than this server's API (4.0); use ${CONDITION_TYPES.join(", ")}`
      : `must be one of ${CONDITION_TYPES.join(", ")}`;
    problems.push({ field: `${field}.type`, reason });
    return null;
  }
  if (typeof matchValue !== "string" || matchValue.length > MAX_MATCH_LENGTH) {
    problems.push({ field: `${field}.matchValue`, reason: `must be a string of at most ${MAX_MATCH_LENGTH} characters` });
    return null;
  }
  if (type === "device") {
    const device = matchValue.toLowerCase();
    if (!(DEVICES as readonly string[]).includes(device)) {
      problems.push({ field: `${field}.matchValue`, reason: `must be one of ${DEVICES.join(", ")}` });
      return null;
    }
    return { type, matchKey: null, matchValue: device };
  }
  if (type === "language") {
    if (!LANGUAGE_TAG.test(matchValue)) {
      problems.push({ field: `${field}.matchValue`, reason: "must be a language, optionally with a region: en, en-US" });
      return null;
    }
    return { type, matchKey: null, matchValue };
  }
  if (typeof matchKey !== "string" || matchKey === "" || matchKey.length > MAX_MATCH_LENGTH) {
    problems.push({ field: `${field}.matchKey`, reason: "must name the query parameter" });
    return null;
  }
  return { type: "query-param", matchKey, matchValue };
}

function parseRule(raw: unknown, field: string, problems: InvalidElement[]): RedirectRuleInput | null {
  if (!isObject(raw)) {
    problems.push({ field, reason: "must be an object with longUrl and conditions" });
    return null;
  }
  const checked = checkLongUrl(raw.longUrl);
  const longUrl = "url" in checked ? checked.url : null;
  if ("problem" in checked) problems.push({ field: `${field}.longUrl`, reason: checked.problem });
  const conditions = raw.conditions;
  if (!Array.isArray(conditions) || conditions.length === 0 || conditions.length > MAX_CONDITIONS) {
    problems.push({ field: `${field}.conditions`, reason: `must be a list of 1 to ${MAX_CONDITIONS} conditions` });
    return null;
  }
  const parsed = conditions.map((c, i) => parseCondition(c, `${field}.conditions[${i}]`, problems));
  if (longUrl === null || parsed.some((c) => c === null)) return null;
  return { longUrl, conditions: parsed as RedirectCondition[] };
}

/** The body of `POST /short-urls/{shortCode}/redirect-rules`: every problem named at once, or the rules in order. */
export function parseRedirectRulesInput(raw: unknown): RedirectRuleInput[] {
  if (!isObject(raw)) throw invalidData([{ field: "body", reason: "must be a JSON object" }]);
  const rules = raw.redirectRules;
  if (!Array.isArray(rules) || rules.length > MAX_RULES) {
    throw invalidData([{ field: "redirectRules", reason: `must be a list of at most ${MAX_RULES} rules ([] removes them all)` }]);
  }
  const problems: InvalidElement[] = [];
  const parsed = rules.map((rule, i) => parseRule(rule, `redirectRules[${i}]`, problems));
  if (problems.length > 0) throw invalidData(problems);
  return parsed as RedirectRuleInput[];
}

/** Rules as stored, priority 1 first. */
export function rulesFromRows(rows: readonly RedirectRuleRow[]): RedirectRule[] {
  return rows.map((row) => ({
    priority: row.priority,
    longUrl: row.long_url,
    conditions: JSON.parse(row.conditions) as RedirectCondition[],
  }));
}

/** Rules as the store takes them, in priority order. */
export function rowsFromRules(rules: readonly RedirectRuleInput[]): Omit<RedirectRuleRow, "priority">[] {
  return rules.map((rule) => ({ long_url: rule.longUrl, conditions: JSON.stringify(rule.conditions) }));
}

/** What a redirect request offers the conditions. */
export interface RuleRequest {
  userAgent: string | null;
  acceptLanguage: string | null;
  /** The request URL, for its query. */
  url: string;
}

const DEVICE_MEMO_LIMIT = 2048;
const deviceMemo = new Map<string, Device | null>();

/**
 * The device of a user agent, as Shlink tells it: iOS (iPhone and iPad), Android (phones and tablets), desktop for
 * anything that is neither a phone nor a tablet (an empty agent included), else none.
 */
export function deviceOf(userAgent: string | null): Device | null {
  const ua = userAgent ?? "";
  if (ua === "") return "desktop";
  let device = deviceMemo.get(ua);
  if (device === undefined) {
    const parser = Bowser.getParser(ua);
    const os = parser.getOSName(true);
    const platform = parser.getPlatformType(true);
    device = os === "ios" ? "ios" : os === "android" ? "android" : platform === "mobile" || platform === "tablet" ? null : "desktop";
    if (deviceMemo.size >= DEVICE_MEMO_LIMIT) deviceMemo.clear();
    deviceMemo.set(ua, device);
  }
  return device;
}

const splitLocale = (locale: string) => locale.trim().toLowerCase().replaceAll("_", "-").split("-");

/** Accept-Language's languages, normalized (lower case, `-`), without `*`, whatever their quality (as Shlink). */
function acceptedLanguages(header: string | null): string[][] {
  if (header === null) return [];
  return header
    .split(",")
    .map((part) => splitLocale(part.split(";")[0] ?? ""))
    .filter((parts) => parts[0] !== "" && parts[0] !== "*");
}

function queryValue(url: string, key: string): string | null {
  const q = url.indexOf("?");
  return q === -1 ? null : new URLSearchParams(url.slice(q + 1)).get(key);
}

function matches(condition: RedirectCondition, request: RuleRequest): boolean {
  switch (condition.type) {
    case "device":
      return deviceOf(request.userAgent) === condition.matchValue;
    case "language": {
      const [language, region] = splitLocale(condition.matchValue);
      return acceptedLanguages(request.acceptLanguage).some(([l, r]) => l === language && (region === undefined || r === region));
    }
    case "query-param":
      return queryValue(request.url, condition.matchKey as string) === condition.matchValue;
  }
}

/** The long URL of the first rule whose conditions all hold, or `fallback` (the link's own long URL). */
export function ruleTarget(rules: readonly RedirectRuleInput[], request: RuleRequest, fallback: string): string {
  for (const rule of rules) {
    if (rule.conditions.every((condition) => matches(condition, request))) return rule.longUrl;
  }
  return fallback;
}
