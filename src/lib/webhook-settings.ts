/**
 * The webhook delivery settings of the settings table (src/config.ts spreads them in): when a delivery is given
 * up, how retries back off, and how long one attempt may take. Kept here so config.ts stays one screenful.
 */
import type { Config, Setting } from "../config";
import { SettingError } from "../errors";
import { boolean, duration } from "./setting-parsers";

type WebhookKey = "webhookMaxAttempts" | "webhookRetryBaseMs" | "webhookRetryMaxMs" | "webhookTimeoutMs" | "webhookAllowLoopback";

function setting<K extends WebhookKey>(
  flag: string,
  key: K,
  fallback: string,
  help: string,
  parse: (raw: string, name: string) => number | boolean,
) {
  const env = `SHORTENER_${flag.toUpperCase().replaceAll("-", "_")}`;
  return { key, flag, env, fallback, help, parse } as Setting<K> & { parse: (raw: string, name: string) => Config[K] };
}

function attempts(raw: string, name: string): number {
  if (!/^\d+$/.test(raw) || Number(raw) < 1 || Number(raw) > 100)
    throw new SettingError(name, `"${raw}" is not a whole number from 1 to 100`);
  return Number(raw);
}

export const WEBHOOK_SETTINGS = [
  setting(
    "webhook-max-attempts",
    "webhookMaxAttempts",
    "12",
    "failed attempts after which a webhook delivery is dead (kept for a manual retry)",
    attempts,
  ),
  setting(
    "webhook-retry-base",
    "webhookRetryBaseMs",
    "30s",
    "first webhook retry delay; doubles per attempt, with full jitter",
    duration(10, 3_600_000),
  ),
  setting(
    "webhook-retry-max",
    "webhookRetryMaxMs",
    "6h",
    "longest delay between two attempts of a webhook delivery",
    duration(10, 86_400_000),
  ),
  setting("webhook-timeout", "webhookTimeoutMs", "15s", "how long one webhook delivery may take", duration(100, 120_000)),
  setting(
    "webhook-allow-loopback",
    "webhookAllowLoopback",
    "false",
    "let webhooks reach this machine and link-local addresses (its own services, cloud metadata); off, such URLs are refused",
    boolean,
  ),
] as const;
