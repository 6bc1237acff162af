// Where the workflow's steps leave what the next ones read: one folder per execution in the construct's bucket
// (`workflow-runs/<execution name>/`), the states passing only the run id and a batch number. Keys are built here
// from a checked run id, never taken from a payload.
import { ConfigError } from '../core/errors.ts';
import { WORKFLOW_RUN_ID, WORKFLOW_RUNS_PREFIX } from '../core/contract.ts';

export interface RunStore {
  /** The object's text, or undefined when there is none. */
  get(key: string): Promise<string | undefined>;
  /** The text whole, or in pieces (a plan, an inventory part: tens of MB, never held whole). */
  put(key: string, body: string | Iterable<string>): Promise<void>;
}

/** The keys of one run. */
export function runKeys(runId: string) {
  if (!WORKFLOW_RUN_ID.test(runId)) {
    throw new ConfigError(
      `run id ${JSON.stringify(runId)} is not an execution name (1-80 letters, digits, - and _): start the ` +
        'state machine with such a --name, or none',
    );
  }
  return keysUnder(`${WORKFLOW_RUNS_PREFIX}${runId}/`);
}

/**
 * The same keys for every run and batch as IAM resource patterns (`*` for the run and the batch): the
 * construct grants each step's role only the keys that step reads and writes.
 */
export function runKeyPatterns() {
  const k = keysUnder(`${WORKFLOW_RUNS_PREFIX}*/`);
  return {
    run: k.run,
    history: k.history,
    journal: k.journal,
    inventory: k.inventory('*'),
    plan: k.plan,
    planPart: k.planPart('*'),
    apply: k.apply('*'),
    deletions: k.deletions,
    verify: k.verify('*'),
  };
}

function keysUnder(base: string) {
  return {
    base,
    run: `${base}run.json`,
    history: `${base}history.json`,
    journal: `${base}journal.json`,
    inventory: (batch: number | '*') => `${base}inventory/${batch}.json`,
    plan: `${base}plan.json`,
    planPart: (batch: number | '*') => `${base}plan/${batch}.json`,
    apply: (batch: number | '*') => `${base}apply/${batch}.json`,
    deletions: `${base}deletions.json`,
    verify: (batch: number | '*') => `${base}verify/${batch}.json`,
  };
}

/** An in-memory store (tests, and the single run has no need of one). */
export class MemoryRunStore implements RunStore {
  public readonly objects = new Map<string, string>();
  public get(key: string): Promise<string | undefined> {
    return Promise.resolve(this.objects.get(key));
  }
  public put(key: string, body: string | Iterable<string>): Promise<void> {
    this.objects.set(key, typeof body === 'string' ? body : [...body].join(''));
    return Promise.resolve();
  }
}
