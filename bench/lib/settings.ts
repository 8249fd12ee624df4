/** A benchmark's numeric knob: the environment variable `env`, else `fallback`; anything but a positive number stops the run. */
export function numberSetting(env: string, fallback: number, raw: string | undefined = process.env[env]): number {
  const value = raw === undefined ? fallback : Number(raw);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${env}: "${raw}" is not a positive number`);
  return value;
}

/** Seconds at the start of each bench/paced-load.ts run sent at the same rate but not recorded (both JITs warm up). */
export const PACED_WARMUP_SECONDS = 2;
