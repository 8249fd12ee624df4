/**
 * Entry point: `shortener <command> [flags]`. Exit codes: 0 ok; 1 a bad setting (systemd must not restart into
 * the same bad config: the unit has RestartPreventExitStatus=1); 2 misuse of the command line; 70 any other
 * failure (a port still held by the old process, a database that will not open, a crash), which systemd may
 * retry.
 */
import { COMMANDS } from "./cli/commands";
import { SETTING_FLAGS, SETTINGS } from "./config";
import { IO_ERROR_HINT, SettingError, UsageError } from "./errors";
import { parseArgs } from "./lib/args";

const EXIT_SETTING = 1;
const EXIT_USAGE = 2;
const EXIT_FAILURE = 70;

// A crash outside a command's own error handling must not look like a bad setting (exit 1 is never restarted).
for (const event of ["uncaughtException", "unhandledRejection"] as const) {
  process.on(event, (error: unknown) => {
    process.stderr.write(`shortener: fatal: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(EXIT_FAILURE);
  });
}

function help(): string {
  const commands = COMMANDS.map((c) => `  ${c.name.padEnd(10)} ${c.summary}`).join("\n");
  const settings = SETTINGS.map((s) => `  --${s.flag.padEnd(22)} ${s.env.padEnd(32)} ${s.help} (default ${s.fallback})`).join("\n");
  return `usage: shortener <command> [flags]\n\ncommands:\n${commands}\n\nsettings (flag, environment variable):\n${settings}\n`;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "help" || name === "--help" || name === "-h") {
    process.stdout.write(help());
    return name === undefined ? EXIT_USAGE : 0;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (command === undefined) {
    process.stderr.write(`shortener: unknown command "${name}". Try: shortener help\n`);
    return EXIT_USAGE;
  }
  const args = parseArgs(rest, new Set(command.booleans ?? []));
  // A misspelt flag must not silently run on a default (e.g. `check --min-disk-fre 2GiB`).
  const known = new Set([...SETTING_FLAGS, ...(command.booleans ?? []), ...(command.options ?? [])]);
  const unknown = [...args.flags.keys()].filter((flag) => !known.has(flag));
  if (unknown.length > 0) {
    process.stderr.write(`shortener ${command.name}: unknown flag ${unknown.map((f) => `--${f}`).join(", ")}\nusage: ${command.usage}\n`);
    return EXIT_USAGE;
  }
  try {
    return await command.run(args);
  } catch (error) {
    if (error instanceof SettingError) {
      process.stderr.write(`shortener: ${error.message}\n`);
      return EXIT_SETTING;
    }
    if (error instanceof UsageError) {
      process.stderr.write(`shortener ${command.name}: ${error.message}\nusage: ${command.usage}\n`);
      return EXIT_USAGE;
    }
    const code = (error as { code?: unknown }).code;
    const why = typeof code === "string" && code.startsWith("SQLITE_IOERR") ? ` (${code}: ${IO_ERROR_HINT})` : "";
    process.stderr.write(`shortener ${command.name}: ${error instanceof Error ? error.message : String(error)}${why}\n`);
    return EXIT_FAILURE;
  }
}

// Exit explicitly: a command has finished its work (serve has closed the database) when main returns.
process.exit(await main(process.argv.slice(2)));
