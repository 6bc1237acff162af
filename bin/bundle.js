#!/usr/bin/env node
// The CLI's prebuilt bundle, so a command starts without compiling TypeScript. esbuild makes
// dist/<entry>-<id>/<entry>.mjs from bin/<entry>.ts on first use and again whenever a file it was made from has
// changed: dist/<entry>.json records each input's size, mtime and SHA-256 (read by the same call that handed the
// file to esbuild, so it is exactly what was bundled). bin/registry-janitor.js runs it through runEntry(), and the
// TypeScript through tsx when it cannot be built.
//   node bin/bundle.js build [ENTRY...]       (npm run build:cli) build now, whatever the stamp says
//   node bin/bundle.js run ENTRY [ARG...]     run one (npm run demo)
import { createHash, randomBytes } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { dirname, extname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { performance } from 'node:perf_hooks';
import process from 'node:process';
import { fileURLToPath, pathToFileURL, URL } from 'node:url';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** What can be bundled: name -> its TypeScript entry, relative to the checkout. */
export const ENTRIES = { cli: 'bin/cli.ts', demo: 'bin/demo.ts' };

/** Where the bundles and their stamps go (git-ignored). */
export const DIST = 'dist';

// Bumped when the stamp's shape changes.
const STAMP_FORMAT = 1;
// Files that change what esbuild makes without being bundled themselves (this file holds the build options).
const CONFIG_INPUTS = ['package.json', 'tsconfig.json', 'node_modules/.package-lock.json', 'bin/bundle.js'];
// A build other than the current one is removed once it is this old (a process started from it may still
// load a chunk or read a file beside it).
const OLD_BUILD_MS = 60 * 60 * 1000;
// ESM output has no `require`; the CommonJS dependencies bundled inside (undici, the AWS SDK) still call it.
const REQUIRE_BANNER =
  "import { createRequire as __janitorCreateRequire } from 'node:module'; " +
  'const require = __janitorCreateRequire(import.meta.url);';
// The one form of import.meta our sources may use: a file beside the module, copied beside the bundle.
const BESIDE_MODULE = /new URL\(\s*(['"])\.\/([^'"/\\]+)\1\s*,\s*import\.meta\.url\s*\)/g;

export class BundleError extends Error {
  name = 'BundleError';
}

const sha256 = (data) => createHash('sha256').update(data).digest('hex');

/** [size, mtimeMs, sha256] of a file and its bytes; stat first, so a write racing the read shows as a change. */
function fingerprint(file) {
  const st = statSync(file);
  const data = readFileSync(file);
  return { print: [st.size, st.mtimeMs, sha256(data)], data };
}

/** Why `file` no longer matches its recorded fingerprint (null: recorded as absent), or undefined if it does. */
function changed(file, want) {
  let st;
  try {
    st = statSync(file, { throwIfNoEntry: false });
  } catch (err) {
    return `cannot be read (${err.code ?? err.message})`;
  }
  if (!st) return want === null ? undefined : 'is gone';
  if (want === null) return 'is new';
  if (st.size !== want[0]) return 'has changed';
  if (st.mtimeMs === want[1]) return undefined;
  // Touched (a checkout, a copy): the content decides.
  return sha256(readFileSync(file)) === want[2] ? undefined : 'has changed';
}

const stampPath = (root, name) => join(root, DIST, `${name}.json`);

/**
 * Whether entry `name` has a bundle built from the files as they are now: `{ fresh: true, main }` (the
 * bundle's path), or `{ fresh: false, reason }`.
 */
export function bundleState(name, root = ROOT) {
  const entry = entryOf(name);
  let stamp;
  try {
    stamp = JSON.parse(readFileSync(stampPath(root, name), 'utf8'));
  } catch (err) {
    return {
      fresh: false,
      reason: err.code === 'ENOENT' ? 'not built yet' : `unreadable stamp (${err.message})`,
    };
  }
  if (stamp?.format !== STAMP_FORMAT || stamp.entry !== entry || typeof stamp.inputs !== 'object')
    return { fresh: false, reason: 'stamped by another version of bin/bundle.js' };
  // Once per input at every start: plain concatenation, no path.resolve (about a thousand inputs).
  const base = root.endsWith(sep) ? root : root + sep;
  for (const [input, want] of Object.entries(stamp.inputs)) {
    const why = changed(input.startsWith('../') ? resolve(base, input) : base + input, want);
    if (why) return { fresh: false, reason: `${input} ${why}` };
  }
  for (const output of stamp.outputs ?? [])
    if (!existsSync(join(root, DIST, output)))
      return { fresh: false, reason: `${DIST}/${output} is missing` };
  return { fresh: true, main: join(root, DIST, stamp.main) };
}

function entryOf(name) {
  const entry = Object.hasOwn(ENTRIES, name) ? ENTRIES[name] : undefined;
  if (!entry) throw new BundleError(`unknown entry "${name}"; one of ${Object.keys(ENTRIES).join(', ')}`);
  return entry;
}

const loaderFor = (file) =>
  ({ '.ts': 'ts', '.mts': 'ts', '.cts': 'ts', '.json': 'json' })[extname(file)] ?? 'js';

/**
 * Build entry `name` into a directory of its own under dist/, then point the stamp at it (a rename, so a
 * process starting meanwhile sees the old build or the new one, never half of one). Throws BundleError.
 */
export async function buildBundle(name, root = ROOT) {
  const entry = entryOf(name);
  let esbuild;
  try {
    esbuild = await import('esbuild');
  } catch (err) {
    throw new BundleError(`esbuild is not installed (${err.code ?? err.message}); npm ci installs it`);
  }
  const dist = join(root, DIST);
  const id = `${name}-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
  const outdir = join(dist, id);
  try {
    mkdirSync(outdir, { recursive: true });
  } catch (err) {
    throw new BundleError(`cannot write ${dist} (${err.code ?? err.message})`);
  }
  const started = performance.now();
  try {
    const inputs = {};
    const own = new Map();
    const key = (file) => relative(root, file).split(sep).join('/');
    const fingerprints = {
      name: 'fingerprints',
      setup(build) {
        build.onLoad({ filter: /\.(?:[cm]?[jt]s|json)$/, namespace: 'file' }, (args) => {
          const { print, data } = fingerprint(args.path);
          inputs[key(args.path)] = print;
          if (!args.path.split(sep).includes('node_modules')) own.set(args.path, data.toString('utf8'));
          return { contents: data, loader: loaderFor(args.path) };
        });
      },
    };
    let result;
    try {
      result = await esbuild.build({
        absWorkingDir: root,
        entryPoints: { [name]: join(root, entry) },
        outdir,
        entryNames: '[name]',
        chunkNames: 'chunk-[hash]',
        outExtension: { '.js': '.mjs' },
        bundle: true,
        // The commands are imported when run, so `--help` loads none of them, and `plan` no AWS SDK.
        splitting: true,
        format: 'esm',
        platform: 'node',
        target: 'node20',
        mainFields: ['module', 'main'],
        banner: { js: REQUIRE_BANNER },
        metafile: true,
        logLevel: 'silent',
        plugins: [fingerprints],
      });
    } catch (err) {
      const first = err.errors?.[0];
      const where = first?.location ? `${first.location.file}:${first.location.line}: ` : '';
      throw new BundleError(`esbuild failed: ${first ? where + first.text : (err.message ?? String(err))}`);
    }
    for (const input of Object.keys(result.metafile.inputs))
      if (!inputs[input]) throw new BundleError(`${input} was bundled without a fingerprint`);
    const outputs = Object.keys(result.metafile.outputs).map((f) =>
      key(resolve(root, f)).slice(DIST.length + 1),
    );
    outputs.push(...copyBeside(own, outdir, inputs, key));
    for (const file of CONFIG_INPUTS) {
      const abs = join(root, file);
      inputs[file] = existsSync(abs) ? fingerprint(abs).print : null;
    }
    const ms = Math.round(performance.now() - started);
    const stamp = {
      format: STAMP_FORMAT,
      entry,
      main: `${id}/${name}.mjs`,
      outputs,
      builtAt: new Date().toISOString(),
      esbuild: esbuild.version,
      ms,
      inputs,
    };
    const temp = join(dist, `.${id}.json`);
    writeFileSync(temp, JSON.stringify(stamp));
    renameSync(temp, stampPath(root, name));
    removeOldBuilds(dist, name, id);
    const bytes = outputs.reduce((n, f) => n + statSync(join(dist, f)).size, 0);
    return { main: join(dist, stamp.main), ms, inputs: Object.keys(inputs).length, bytes };
  } catch (err) {
    rmSync(outdir, { recursive: true, force: true });
    if (err instanceof BundleError) throw err;
    throw new BundleError(`building ${entry} failed (${err.code ?? err.message})`);
  }
}

/**
 * Our sources read files beside themselves (`new URL('./registry-gc.sh', import.meta.url)`); in the bundle
 * that URL is beside the bundle, so each such file is copied there and fingerprinted as an input. Any other
 * use of import.meta would silently point somewhere else from dist/, so it fails the build.
 */
function copyBeside(own, outdir, inputs, key) {
  const copied = new Map();
  for (const [file, text] of own) {
    const total = text.split('import.meta').length - 1;
    let matched = 0;
    for (const [, , name] of text.matchAll(BESIDE_MODULE)) {
      matched++;
      const from = join(dirname(file), name);
      if (copied.has(name) && copied.get(name) !== from)
        throw new BundleError(
          `${key(copied.get(name))} and ${key(from)} would both be ${name} beside the bundle`,
        );
      if (copied.has(name)) continue;
      copied.set(name, from);
      let print;
      try {
        const read = fingerprint(from);
        print = read.print;
        writeFileSync(join(outdir, name), read.data);
      } catch (err) {
        throw new BundleError(
          `${key(file)} reads ${key(from)}, which cannot be read (${err.code ?? err.message})`,
        );
      }
      inputs[key(from)] = print;
    }
    if (matched !== total)
      throw new BundleError(
        `${key(file)} uses import.meta other than new URL('./file', import.meta.url); from the bundle in ` +
          `${DIST}/ that would point elsewhere`,
      );
  }
  return [...copied.keys()].map((name) => `${outdir.split(sep).pop()}/${name}`);
}

function removeOldBuilds(dist, name, current) {
  const cutoff = Date.now() - OLD_BUILD_MS;
  for (const entry of readdirSync(dist)) {
    const build = entry.startsWith('.') ? entry.slice(1).replace(/\.json$/, '') : entry;
    if (!build.startsWith(`${name}-`) || build === current) continue;
    try {
      if (statSync(join(dist, entry)).mtimeMs < cutoff)
        rmSync(join(dist, entry), { recursive: true, force: true });
    } catch {
      // Another process removed it first.
    }
  }
}

/**
 * Run entry `name`: its bundle when fresh, else built now; when it cannot be built, the TypeScript through
 * tsx, saying so in one line on stderr.
 */
export async function runEntry(name, root = ROOT) {
  let main;
  try {
    const state = bundleState(name, root);
    main = state.fresh ? state.main : (await buildBundle(name, root)).main;
  } catch (err) {
    const why = err instanceof BundleError ? err.message : String(err);
    process.stderr.write(`registry-janitor: running the TypeScript through tsx (slower start): ${why}\n`);
    const { register } = await import('tsx/esm/api');
    register();
    await import(pathToFileURL(join(root, entryOf(name))).href);
    return;
  }
  await import(pathToFileURL(main).href);
}

function isMain() {
  try {
    return !!process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url);
  } catch {
    return false;
  }
}

if (isMain()) {
  const [command, ...rest] = process.argv.slice(2);
  if (command === 'run' && rest[0]) {
    const [name, ...args] = rest;
    // The entry sees the arguments as if it had been started itself.
    process.argv = [process.argv[0], join(ROOT, entryOf(name)), ...args];
    await runEntry(name);
  } else if (command === 'build' || command === undefined) {
    const names = rest.length > 0 ? rest : Object.keys(ENTRIES);
    try {
      for (const name of names) {
        const built = await buildBundle(name);
        const at = isAbsolute(built.main) ? relative(process.cwd(), built.main) : built.main;
        process.stdout.write(
          `built ${at} from ${built.inputs} files in ${built.ms} ms (${(built.bytes / 1e6).toFixed(1)} MB)\n`,
        );
      }
    } catch (err) {
      process.stderr.write(`error: ${err.message}\n`);
      process.exitCode = 1;
    }
  } else {
    process.stderr.write('usage: node bin/bundle.js build [ENTRY...] | run ENTRY [ARG...]\n');
    process.exitCode = 2;
  }
}
