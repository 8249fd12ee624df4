/** IPv4/IPv6 addresses and CIDR ranges as bigints, for trusted-proxy matching. */

function ipv4ToBigInt(ip: string): bigint | null {
  const parts = ip.split(".");
  if (parts.length !== 4) return null;
  let value = 0n;
  for (const part of parts) {
    if (!/^\d{1,3}$/.test(part) || Number(part) > 255) return null;
    value = (value << 8n) | BigInt(part);
  }
  return value;
}

/** An address as a 128-bit value; IPv4 (and IPv4-mapped IPv6) map into ::ffff:0:0/96. */
export function parseIp(ip: string): bigint | null {
  const trimmed = ip.trim().replace(/^\[|\]$/g, "");
  const v4 = ipv4ToBigInt(trimmed.replace(/^::ffff:/i, ""));
  if (v4 !== null) return (0xffffn << 32n) | v4;
  if (!trimmed.includes(":") || !/^[0-9a-f:]+$/i.test(trimmed)) return null;
  const halves = trimmed.split("::");
  if (halves.length > 2) return null;
  const head = halves[0] ? (halves[0] as string).split(":") : [];
  const tail = halves.length === 2 && halves[1] ? (halves[1] as string).split(":") : [];
  const missing = 8 - head.length - tail.length;
  if ((halves.length === 1 && missing !== 0) || missing < 0) return null;
  const groups = [...head, ...Array(halves.length === 2 ? missing : 0).fill("0"), ...tail];
  let value = 0n;
  for (const group of groups) {
    if (!/^[0-9a-f]{1,4}$/i.test(group)) return null;
    value = (value << 16n) | BigInt(Number.parseInt(group, 16));
  }
  return value;
}

export interface Cidr {
  base: bigint;
  mask: bigint;
}

/** Parses "10.0.0.0/8", "::1/128" or a bare address; null when malformed. */
export function parseCidr(text: string): Cidr | null {
  const [addr, bitsText] = text.trim().split("/");
  if (addr === undefined) return null;
  const base = parseIp(addr);
  if (base === null) return null;
  const isV4 = ipv4ToBigInt(addr.replace(/^::ffff:/i, "")) !== null;
  const maxBits = isV4 ? 32 : 128;
  const bits = bitsText === undefined ? maxBits : Number(bitsText);
  if (!Number.isInteger(bits) || bits < 0 || bits > maxBits) return null;
  const prefix = BigInt((isV4 ? 96 : 0) + bits);
  const mask = prefix === 0n ? 0n : ((1n << 128n) - 1n) ^ ((1n << (128n - prefix)) - 1n);
  return { base: base & mask, mask };
}

export function cidrContains(cidr: Cidr, ip: string): boolean {
  const value = parseIp(ip);
  return value !== null && (value & cidr.mask) === cidr.base;
}
