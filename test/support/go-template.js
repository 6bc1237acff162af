// The part of Go's text/template that `docker inspect -f` templates use (fields, variables, range over lists and
// maps, json, println), so the GC script's fake `docker` can answer any template as the real CLI would, hostile
// values included. Run as `node go-template.js TEMPLATE FILE.json [RUNNING]` it prints the template over the file.

import { readFileSync } from 'node:fs';
import process from 'node:process';
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

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [template, file, running] = process.argv.slice(2);
  const data = JSON.parse(readFileSync(file, 'utf8'));
  if (running !== undefined) {
    data.State = {
      ...data.State,
      Running: running === 'true',
      Status: running === 'true' ? 'running' : 'exited',
    };
  }
  process.stdout.write(`${render(template, data)}\n`);
}
