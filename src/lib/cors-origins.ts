/**
 * The `--cors-allow-origin` setting, as Shlink's CORS_ALLOW_ORIGIN: `*` (any page may call the REST API, answered
 * with `*`), `<origin>` (any, answered with its own origin), or a comma-separated list of origins
 * (`https://admin.example.com`), compared case-insensitively.
 */
import { SettingError } from "../errors";

export type CorsOrigins = "*" | "<origin>" | readonly string[];

export function parseCorsOrigins(raw: string, name: string): CorsOrigins {
  const value = raw.trim().toLowerCase();
  if (value === "*" || value === "<origin>") return value;
  const origins = value
    .split(",")
    .map((o) => o.trim())
    .filter((o) => o !== "");
  if (origins.length === 0)
    throw new SettingError(name, `"${raw}" is empty: give *, <origin> or origins such as https://admin.example.com`);
  for (const origin of origins) {
    let parsed: URL | null = null;
    try {
      parsed = new URL(origin);
    } catch {}
    // An origin is a scheme, a host and maybe a port: nothing else, not even a trailing slash.
    if (parsed === null || (parsed.protocol !== "http:" && parsed.protocol !== "https:") || parsed.origin !== origin) {
      throw new SettingError(name, `"${origin}" is not an origin (scheme://host[:port], e.g. https://admin.example.com)`);
    }
  }
  return origins;
}
