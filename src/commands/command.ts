import type { ParsedArgs } from "../lib/args";

/** A subcommand: one file each, listed in src/cli/commands.ts. `run` returns the exit code. */
export interface Command {
  name: string;
  /** One line: how to call it. */
  usage: string;
  /** One line: what it does. */
  summary: string;
  /** Flags that take no value. */
  booleans?: readonly string[];
  /** The command's own flags that take a value (every command also takes every setting's flag). */
  options?: readonly string[];
  run(args: ParsedArgs): Promise<number>;
}
