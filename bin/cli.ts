#!/usr/bin/env -S npx tsx
// CLI entry: wires the process to the CLI in lambda/cli/main.ts.
import { main } from '../lambda/cli/main.ts';

process.exitCode = await main(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  stdin: process.stdin,
  env: process.env,
});
