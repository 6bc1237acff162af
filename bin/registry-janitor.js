#!/usr/bin/env node
// Installed entry point (`npx registry-janitor`, `npm run cli`): the CLI's bundle in dist/, built on first use and
// whenever the sources change, or the TypeScript through tsx when it cannot be built (bin/bundle.js).
import { runEntry } from './bundle.js';

await runEntry('cli');
