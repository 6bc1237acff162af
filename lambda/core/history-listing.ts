// Reads the listing the registry host uploads for the Lambda (the GC script's `action=list`): one line per revision
// link, `<mtime seconds> <root>/docker/registry/v2/repositories/<repo>/_manifests/revisions/sha256/<hex>/link`.
// It comes from a host and a bucket, so nothing in it is believed until every line has been checked: a line that is
// not of that form, a repository name distribution would refuse, a revision listed twice or a count that differs
// from the summary refuses the whole listing (a partial listing must never pass for a complete one). Pure.
import { isRepositoryName } from './contract.ts';
import { HistoryError } from './errors.ts';
import { REPOSITORIES_PATH, REVISION_HEX, REVISIONS_PATH, type HistoryListing } from './history.ts';
import type { Revision } from './model.ts';

/** Bounds on one listing, far above a very large registry (100,000 revisions are ~15 MB, ~1.5 MB gzip'd). */
export const MAX_LISTING_GZIP_BYTES = 64 * 1024 * 1024;
export const MAX_LISTING_BYTES = 256 * 1024 * 1024;
export const MAX_LISTING_LINES = 2_000_000;

/** A storage root as the script passes it on: absolute, of letters, digits and `. _ / -`. */
const ROOT = /^\/[A-Za-z0-9._/-]{0,1023}$/;
/** Seconds since the epoch: whole, at most 11 digits (year 5138). */
const MTIME = /^[0-9]{1,11}$/;

export interface ListingExpectation {
  /** Where it came from, for the plan (e.g. `registry container reg1 on i-…: /var/lib/registry`). */
  readonly source: string;
  /** The storage root the script reported. */
  readonly root: string;
  /** The number of lines the script reported. */
  readonly count: number;
}

/** The listing's text (decompressed) as a HistoryListing; throws a HistoryError naming the first thing wrong. */
export function parseListing(text: string, expected: ListingExpectation): HistoryListing {
  const refuse = (why: string): HistoryError =>
    new HistoryError(`the storage listing from ${expected.source} was refused: ${why}`);
  if (!ROOT.test(expected.root)) throw refuse(`the storage root "${expected.root}" is not an absolute path`);
  if (text.length > MAX_LISTING_BYTES) throw refuse(`it is over ${MAX_LISTING_BYTES} bytes`);
  if (text !== '' && !text.endsWith('\n')) throw refuse('its last line is cut short');
  const top = `${expected.root.replace(/\/+$/, '')}/${REPOSITORIES_PATH}/`;
  const tail = `/${REVISIONS_PATH}/`;
  const repositories = new Map<string, Revision[]>();
  const seen = new Set<string>();
  let lines = 0;
  let start = 0;
  while (start < text.length) {
    const end = text.indexOf('\n', start);
    const line = text.slice(start, end);
    start = end + 1;
    lines += 1;
    if (lines > MAX_LISTING_LINES) throw refuse(`it has more than ${MAX_LISTING_LINES} lines`);
    const where = `line ${lines}`;
    const space = line.indexOf(' ');
    const mtime = space < 0 ? '' : line.slice(0, space);
    const path = space < 0 ? '' : line.slice(space + 1);
    if (!MTIME.test(mtime)) throw refuse(`${where} does not start with a modification time in seconds`);
    if (!path.startsWith(top) || !path.endsWith('/link')) {
      throw refuse(`${where} is not a revision link under ${top}`);
    }
    const at = path.lastIndexOf(tail);
    const name = at < top.length ? '' : path.slice(top.length, at);
    const hex = at < 0 ? '' : path.slice(at + tail.length, path.length - '/link'.length);
    if (!isRepositoryName(name)) throw refuse(`${where} names no valid repository`);
    if (!REVISION_HEX.test(hex)) throw refuse(`${where} has no sha256 digest where the revision's should be`);
    const key = `${name}@${hex}`;
    if (seen.has(key)) throw refuse(`${where} lists ${name}@sha256:${hex} a second time`);
    seen.add(key);
    const pushedAt = new Date(Number(mtime) * 1000).toISOString();
    const list = repositories.get(name);
    const revision: Revision = { digest: `sha256:${hex}`, pushedAt };
    if (list) list.push(revision);
    else repositories.set(name, [revision]);
  }
  if (lines !== expected.count) {
    throw refuse(`it has ${lines} lines where the host counted ${expected.count}; it is not complete`);
  }
  const byDigest = (a: Revision, b: Revision) => (a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0);
  return {
    source: expected.source,
    repositories: new Map(
      [...repositories]
        .sort(([a], [b]) => (a < b ? -1 : 1))
        .map(([name, revisions]) => [name, revisions.sort(byDigest)]),
    ),
  };
}
