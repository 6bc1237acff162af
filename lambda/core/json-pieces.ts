// JSON text of a large object a piece at a time: its large arrays (a plan's repositories, an inventory part's
// manifests) an element at a time, so that a writer can send it on without the whole text existing at once.
// Joined, the pieces are exactly what JSON.stringify(value, null, indent) writes.

/**
 * The pieces of `JSON.stringify(value, null, indent)`, each element of the arrays named (where they are arrays) a
 * piece of its own. For plain data (no replacer).
 */
export function* jsonPieces<T extends object>(
  value: T,
  arrayKeys: readonly (keyof T & string)[],
  indent = 0,
): Generator<string> {
  const step = ' '.repeat(indent);
  // What comes before a member at this depth: a newline and the indent, when indented.
  const at = (depth: number): string => (indent > 0 ? `\n${step.repeat(depth)}` : '');
  // A value's text as it sits at this depth: its inner lines indented further (JSON text has no raw newline
  // inside a string, so every newline is the layout's).
  const text = (v: unknown, depth: number): string => {
    const s = JSON.stringify(v, null, indent) ?? 'null';
    return indent > 0 && depth > 0 ? s.replaceAll('\n', at(depth)) : s;
  };
  const colon = indent > 0 ? ': ' : ':';
  let members = 0;
  yield '{';
  for (const [key, v] of Object.entries(value) as [string, unknown][]) {
    // Left out as JSON.stringify leaves them out.
    if (v === undefined || typeof v === 'function' || typeof v === 'symbol') continue;
    const head = `${members > 0 ? ',' : ''}${at(1)}${JSON.stringify(key)}${colon}`;
    members++;
    if (!(arrayKeys as readonly string[]).includes(key) || !Array.isArray(v) || v.length === 0) {
      yield head + text(v, 1);
      continue;
    }
    yield `${head}[`;
    for (const [i, element] of (v as unknown[]).entries())
      yield `${i > 0 ? ',' : ''}${at(2)}${text(element, 2)}`;
    yield `${at(1)}]`;
  }
  yield members > 0 ? `${at(0)}}` : '}';
}
