#!/usr/bin/env -S npx tsx
// CLI entry: wires the process to the CLI in lambda/cli.ts.
import { main } from '../lambda/cli.ts';

process.exitCode = await main(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  stdin: process.stdin,
  env: process.env,
});
