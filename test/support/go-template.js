// The part of Go's text/template that `docker inspect -f` templates use (fields, variables, range over lists and
// maps, json, println), so the GC script's fake `docker` can answer any template as the real CLI would, hostile
// values included. Run as `node go-template.js TEMPLATE FILE.json [RUNNING]` it prints the template over the file;
// startTemplateServer() answers the same requests from inside the test process, without a node start-up per call.

import { Buffer } from 'node:buffer';
import { execFileSync } from 'node:child_process';
import { closeSync, constants, existsSync, openSync, readFileSync, writeSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { Socket } from 'node:net';
import { join } from 'node:path';
import process from 'node:process';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';

/** Go's encoding/json output for a value: map keys sorted, and <, >, &, U+2028, U+2029 escaped as Go does. */
export function goJson(value) {
  const sorted = (v) =>
    v !== null && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(
          Object.keys(v)
            .sort()
            .map((k) => [k, sorted(v[k])]),
        )
      : Array.isArray(v)
        ? v.map(sorted)
        : v;
  return (JSON.stringify(sorted(value ?? null)) ?? 'null').replace(
    /[<>&\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/** fmt's %v for the values inspect holds. */
function show(value) {
  if (value === undefined || value === null) return '';
  if (Array.isArray(value)) return `[${value.map(show).join(' ')}]`;
  if (typeof value === 'object') {
    const keys = Object.keys(value).sort();
    return `map[${keys.map((k) => `${k}:${show(value[k])}`).join(' ')}]`;
  }
  return String(value);
}

function tokenize(template) {
  const parts = [];
  let at = 0;
  while (at < template.length) {
    const open = template.indexOf('{{', at);
    if (open < 0) {
      parts.push({ text: template.slice(at) });
      break;
    }
    if (open > at) parts.push({ text: template.slice(at, open) });
    const close = template.indexOf('}}', open);
    if (close < 0) throw new Error(`template: unclosed action at ${open}`);
    parts.push({ action: template.slice(open + 2, close).trim() });
    at = close + 2;
  }
  return parts;
}

/** Nests range ... end into a tree. */
function parse(parts) {
  const root = { body: [] };
  const stack = [root];
  for (const part of parts) {
    const top = stack[stack.length - 1];
    if (part.text !== undefined) top.body.push(part);
    else if (part.action === 'end') {
      if (stack.length === 1) throw new Error('template: unexpected end');
      stack.pop();
    } else if (part.action.startsWith('range ')) {
      const spec = part.action.slice(6).trim();
      const m = /^(\$\w+)\s*(?:,\s*(\$\w+)\s*)?:=\s*(.+)$/.exec(spec);
      const node = m
        ? { range: m[3].trim(), first: m[1], second: m[2], body: [] }
        : { range: spec, body: [] };
      top.body.push(node);
      stack.push(node);
    } else top.body.push(part);
  }
  if (stack.length !== 1) throw new Error('template: range without end');
  return root.body;
}

function term(word, dot, vars) {
  if (word.startsWith('"')) return JSON.parse(word);
  let value;
  let path;
  if (word === '.') return dot;
  if (word.startsWith('$')) {
    const [name, ...rest] = word.split('.');
    if (!(name in vars)) throw new Error(`template: undefined variable ${name}`);
    value = vars[name];
    path = rest;
  } else if (word.startsWith('.')) {
    value = dot;
    path = word.slice(1).split('.');
  } else throw new Error(`template: cannot read ${word}`);
  for (const key of path) value = value === null || value === undefined ? undefined : value[key];
  return value;
}

function pipeline(action, dot, vars) {
  const words = action.match(/"(?:[^"\\]|\\.)*"|\S+/g) ?? [];
  const [head, ...args] = words;
  if (head === 'json') return goJson(term(args[0], dot, vars));
  if (head === 'println') return `${args.map((a) => show(term(a, dot, vars))).join(' ')}\n`;
  if (head === 'index') return show(term(args[0], dot, vars)?.[term(args[1], dot, vars)]);
  if (args.length > 0) throw new Error(`template: function ${head} not known here`);
  return show(term(head, dot, vars));
}

function execute(nodes, dot, vars) {
  let out = '';
  for (const node of nodes) {
    if (node.text !== undefined) out += node.text;
    else if (node.range !== undefined) {
      const over = term(node.range, dot, vars);
      if (over === null || over === undefined) continue;
      const entries = Array.isArray(over)
        ? over.map((v, i) => [i, v])
        : Object.keys(over)
            .sort()
            .map((k) => [k, over[k]]);
      for (const [k, v] of entries) {
        const scope = { ...vars };
        if (node.second) {
          scope[node.first] = k;
          scope[node.second] = v;
        } else if (node.first) scope[node.first] = v;
        out += execute(node.body, v, scope);
      }
    } else out += pipeline(node.action, dot, vars);
  }
  return out;
}

/** Renders a `docker inspect -f` template over one inspect object. */
export function render(template, data) {
  return execute(parse(tokenize(template)), data, { $: data });
}

/** What `docker inspect -f TEMPLATE` prints for the container in FILE, its state RUNNING (`true`/`false`) if given. */
export function renderFile(template, file, running) {
  const data = JSON.parse(readFileSync(file, 'utf8'));
  if (running !== undefined) {
    data.State = {
      ...data.State,
      Running: running === 'true',
      Status: running === 'true' ? 'running' : 'exited',
    };
  }
  return `${render(template, data)}\n`;
}

/**
 * Renders for many fake `docker` processes at once. A request is a folder holding the files `template`, `file`
 * and, if given, `running`, and a FIFO `out`; the client writes the folder's path as one line to `requests` (a
 * FIFO in DIR) and reads `out`: the exit status on the first line (0, or 1 for a template error), then what
 * `node go-template.js` would print (on stdout, or its error on stderr).
 */
export function startTemplateServer(dir) {
  const requests = join(dir, 'requests');
  execFileSync('mkfifo', [requests]);
  // Read and write: the FIFO then never reaches end-of-file between clients, and opening it never blocks.
  const socket = new Socket({
    fd: openSync(requests, constants.O_RDWR | constants.O_NONBLOCK),
    writable: false,
  });
  let pending = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk) => {
    pending += chunk;
    for (let nl = pending.indexOf('\n'); nl >= 0; nl = pending.indexOf('\n')) {
      void answer(pending.slice(0, nl));
      pending = pending.slice(nl + 1);
    }
  });
  return { requests, close: () => socket.destroy() };
}

async function answer(request) {
  let reply;
  try {
    const read = (name) => readFile(join(request, name), 'utf8');
    const running = existsSync(join(request, 'running')) ? await read('running') : undefined;
    reply = `0\n${renderFile(await read('template'), await read('file'), running)}`;
  } catch (err) {
    reply = `1\n${err instanceof Error ? err.message : String(err)}\n`;
  }
  // The client opens `out` for reading right after its request; a write end opens once it has.
  let fd;
  for (let tries = 0; fd === undefined; tries++) {
    try {
      fd = openSync(join(request, 'out'), constants.O_WRONLY | constants.O_NONBLOCK);
    } catch (err) {
      if (err.code !== 'ENXIO' || tries > 10_000) return;
      await sleep(2);
    }
  }
  try {
    const bytes = Buffer.from(reply);
    for (let at = 0; at < bytes.length;) {
      try {
        at += writeSync(fd, bytes, at);
      } catch (err) {
        if (err.code !== 'EAGAIN') throw err;
        await sleep(2);
      }
    }
  } finally {
    closeSync(fd);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [template, file, running] = process.argv.slice(2);
  process.stdout.write(renderFile(template, file, running));
}
