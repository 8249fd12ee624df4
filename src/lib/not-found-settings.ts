/**
 * Where visitors are sent instead of the 404 page (Shlink's DEFAULT_BASE_URL_REDIRECT, DEFAULT_REGULAR_404_REDIRECT and
 * DEFAULT_INVALID_SHORT_URL_REDIRECT), for every domain that sets none of its own through the API. The settings table
 * (src/config.ts) spreads them in.
 */
import type { Config, Setting } from "../config";
import { SettingError } from "../errors";

type NotFoundKey = "baseUrlRedirect" | "regular404Redirect" | "invalidShortUrlRedirect";

/** An http(s) URL, or null for none (the empty string); `{DOMAIN}` and `{ORIGINAL_PATH}` are filled in per request. */
function redirectUrl(raw: string, name: string): string | null {
  if (raw === "") return null;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new SettingError(name, `"${raw}" is not an absolute URL`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new SettingError(name, `"${raw}" is not an http or https URL`);
  if (/[\u0000-\u0020\u007f]/.test(raw)) throw new SettingError(name, `"${raw}" has spaces or control characters`);
  // WHATWG URLs allow braces in a host: a placeholder there would be sent literally.
  if (url.host.includes("{")) throw new SettingError(name, `"${raw}": placeholders go in the path or the query, not the host`);
  return raw;
}

function setting<K extends NotFoundKey>(flag: string, key: K, help: string) {
  const env = `SHORTENER_${flag.toUpperCase().replaceAll("-", "_")}`;
  return { key, flag, env, fallback: "", help, parse: redirectUrl } as Setting<K> & { parse: (raw: string, name: string) => Config[K] };
}

export const NOT_FOUND_SETTINGS = [
  setting("base-url-redirect", "baseUrlRedirect", "where a visit to / is sent (none: the 404 page)"),
  setting("regular-404-redirect", "regular404Redirect", "where a visit to any other unknown path is sent (none: the 404 page)"),
  setting("invalid-short-url-redirect", "invalidShortUrlRedirect", "where a visit to an unknown, expired or used-up code is sent"),
] as const;
