/** Parsers of the settings table's values (src/config.ts and the lib/*-settings.ts parts it spreads in). */
import { resolve } from "node:path";
import type { HostPort } from "../config";
import { SettingError } from "../errors";
import { parseDuration } from "./duration";
import { parseSize } from "./size";

export function hostPort(raw: string, name: string): HostPort {
  const match = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]*):(\d{1,5})$/.exec(raw);
  const port = match ? Number(match[2]) : Number.NaN;
  if (!match || port > 65535) throw new SettingError(name, `"${raw}" is not host:port (e.g. 127.0.0.1:8080)`);
  const host = (match[1] as string).replace(/^\[|\]$/g, "");
  return { hostname: host === "" ? "0.0.0.0" : host, port };
}

/**
 * A host:port on the loopback interface: the ops listener serves /metrics and POST /control/drain without a key, so
 * it must not be reachable from another machine (DESIGN.md: "Ops listener (loopback only)").
 */
export function loopbackHostPort(raw: string, name: string): HostPort {
  const address = hostPort(raw, name);
  const host = address.hostname.toLowerCase();
  if (host === "localhost" || host === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host)) return address;
  throw new SettingError(name, `"${raw}" is not a loopback address (the ops listener takes no API key): use 127.0.0.1:PORT`);
}

/** true/1 or false/0. */
export function boolean(raw: string, name: string): boolean {
  if (raw === "true" || raw === "1") return true;
  if (raw === "false" || raw === "0") return false;
  throw new SettingError(name, `"${raw}" is not true or false`);
}

export function integer(min: number, max: number) {
  return (raw: string, name: string): number => {
    if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) {
      throw new SettingError(name, `"${raw}" is not a whole number from ${min} to ${max}`);
    }
    return Number(raw);
  };
}

export function duration(minMs: number, maxMs: number) {
  return (raw: string, name: string): number => {
    const ms = parseDuration(raw);
    if (ms === null || ms < minMs || ms > maxMs) {
      throw new SettingError(name, `"${raw}" is not a duration from ${minMs}ms to ${maxMs / 1000}s (e.g. 1s, 500ms)`);
    }
    return ms;
  };
}

export function size(raw: string, name: string): number {
  const bytes = parseSize(raw);
  if (bytes === null) throw new SettingError(name, `"${raw}" is not a size (e.g. 512MiB, 1GiB, 100MB or a number of bytes)`);
  return bytes;
}

export function path(raw: string, name: string): string {
  if (raw.trim() === "") throw new SettingError(name, "must not be empty");
  return resolve(raw);
}
