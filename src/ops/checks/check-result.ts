/** One named self-check of `shortener check` and what it found. */

/** The outcome of one check; `name` is stable (scripts and tests match on it), `hint` says what to do on failure. */
export interface CheckResult {
  name: string;
  ok: boolean;
  detail: string;
  hint?: string;
}

export interface Check {
  name: string;
  run(): Promise<CheckResult>;
}

export function pass(name: string, detail: string): CheckResult {
  return { name, ok: true, detail };
}

export function fail(name: string, detail: string, hint: string): CheckResult {
  return { name, ok: false, detail, hint };
}

/** Runs a check; a check that throws has failed, with the error as its detail (ops code fails loudly). */
export async function runCheck(check: Check): Promise<CheckResult> {
  try {
    return await check.run();
  } catch (error) {
    return fail(check.name, error instanceof Error ? error.message : String(error), "the check itself could not run; see the detail");
  }
}
