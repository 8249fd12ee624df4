import { COMMIT, SHLINK_API_VERSION, sqliteVersionString, VERSION } from "../version";
import type { Command } from "./command";

export const version: Command = {
  name: "version",
  usage: "shortener version [--json]",
  summary: "print version, commit, Bun and SQLite versions",
  booleans: ["json"],
  async run(args) {
    const facts = { version: VERSION, commit: COMMIT, bun: Bun.version, sqlite: sqliteVersionString(), shlinkApi: SHLINK_API_VERSION };
    if (args.flags.has("json")) console.log(JSON.stringify(facts));
    else
      console.log(
        `shortener ${facts.version} (commit ${facts.commit}) bun ${facts.bun} sqlite ${facts.sqlite} shlink-api ${facts.shlinkApi}`,
      );
    return 0;
  },
};
