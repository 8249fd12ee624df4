/**
 * Entry point: `shortener <command> [flags]`. Exit codes: 0 ok; 1 failure or bad setting (systemd must not
 * restart into the same bad config); 2 misuse of the command line.
 */
import { COMMANDS } from "./cli/commands";
import { SETTINGS } from "./config";
import { SettingError, UsageError } from "./errors";
import { parseArgs } from "./lib/args";

function help(): string {
  const commands = COMMANDS.map((c) => `  ${c.name.padEnd(10)} ${c.summary}`).join("\n");
  const settings = SETTINGS.map((s) => `  --${s.flag.padEnd(22)} ${s.env.padEnd(32)} ${s.help} (default ${s.fallback})`).join("\n");
  return `usage: shortener <command> [flags]\n\ncommands:\n${commands}\n\nsettings (flag, environment variable):\n${settings}\n`;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "help" || name === "--help" || name === "-h") {
    process.stdout.write(help());
    return name === undefined ? 2 : 0;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (command === undefined) {
    process.stderr.write(`shortener: unknown command "${name}". Try: shortener help\n`);
    return 2;
  }
  const args = parseArgs(rest, new Set(command.booleans ?? []));
  try {
    return await command.run(args);
  } catch (error) {
    if (error instanceof SettingError) {
      process.stderr.write(`shortener: ${error.message}\n`);
      return 1;
    }
    if (error instanceof UsageError) {
      process.stderr.write(`shortener ${command.name}: ${error.message}\nusage: ${command.usage}\n`);
      return 2;
    }
    process.stderr.write(`shortener ${command.name}: ${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  }
}

// Exit explicitly: a command has finished its work (serve has closed the database) when main returns.
process.exit(await main(process.argv.slice(2)));
