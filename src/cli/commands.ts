/** The command table: every subcommand of the `shortener` binary, in the order `help` lists them. */

import type { Command } from "../commands/command";
import { serve } from "../commands/serve";
import { version } from "../commands/version";
import { audit } from "../ops/audit";
import { check } from "../ops/check";
import { drain } from "../ops/drain";
import { drill } from "../ops/drill";
import { importLinks } from "../ops/import";
import { keys } from "../ops/keys";
import { lease } from "../ops/lease";
import { promote } from "../ops/promote";
import { restore } from "../ops/restore";
import { visits } from "../ops/visits";
import { webhooks } from "../ops/webhooks";

export const COMMANDS: readonly Command[] = [
  serve,
  keys,
  webhooks,
  visits,
  audit,
  importLinks,
  check,
  drain,
  restore,
  drill,
  promote,
  lease,
  version,
];
