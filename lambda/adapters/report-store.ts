// Keeps each Lambda run's HTML report and JSON plan in the construct's bucket, under
// `<prefix><YYYY-MM-DD>/<run id>.html|.json`, so the people who sign off a cleanup can open it (the stack's
// lifecycle rule removes them after 90 days). Writing is never what fails a run: a failure comes back as a result.
import type { S3Client } from '@aws-sdk/client-s3';
import { errorMessage } from '../core/errors.ts';
import { jsonPieces } from '../core/json-pieces.ts';
import type { Plan, Report } from '../core/model.ts';
import { htmlReportPieces } from '../core/report-html.ts';
import { uploadText } from './s3-upload.ts';

export interface ReportLocation {
  readonly bucket: string;
  /** Ends in `/`, e.g. `reports/` (the contract's DEFAULT_REPORTS_PREFIX). */
  readonly prefix: string;
}

/** What one run leaves to report on. */
export interface RunReportInput {
  /** Unique per run; part of the key. */
  readonly runId: string;
  /** When the run started: its UTC day names the folder. */
  readonly startedAt: Date;
  readonly plan: Plan;
  /** The outcome of the deletes, when the run applied the plan. */
  readonly outcome?: Report;
  /** The delete guard the run applied, which the page shows. */
  readonly maxDeleteFraction: number;
  /**
   * false: only the page. The workflow's report step passes it: its plan step wrote the plan's JSON, and the plan
   * has not changed since (at 100,000 tags the JSON is tens of MB the step need not hold again).
   */
  readonly planJson?: boolean;
}

/** Where a run's report went, for its log entry and its result. */
export type ReportsStep =
  | { readonly status: 'written'; readonly bucket: string; readonly html: string; readonly json: string }
  | {
      readonly status: 'failed';
      readonly bucket: string;
      readonly html: string;
      readonly json: string;
      /** The keys that were written all the same. */
      readonly written: readonly string[];
      readonly error: string;
    };

export interface ReportStore {
  /** Never throws: a failure is a `failed` step with the reason and the fix. */
  save(run: RunReportInput): Promise<ReportsStep>;
}

const HTML_TYPE = 'text/html; charset=utf-8';
const JSON_TYPE = 'application/json';

/** The run's two keys: `<prefix><YYYY-MM-DD>/<run id>.html` and `.json`, the day in UTC. */
export function reportKeys(
  prefix: string,
  startedAt: Date,
  runId: string,
): { readonly html: string; readonly json: string } {
  const base = `${prefix}${startedAt.toISOString().slice(0, 10)}/${runId.replace(/[^A-Za-z0-9._-]/g, '_')}`;
  return { html: `${base}.html`, json: `${base}.json` };
}

/**
 * A run id that sorts by time and stays unique: `20261201T233000Z-<request id>` (the Lambda's request id, which
 * a person can look up in the log).
 */
export function runIdOf(startedAt: Date, requestId: string): string {
  return `${startedAt.toISOString().replace(/[-:]|\.\d+/g, '')}-${requestId}`;
}

export class S3ReportStore implements ReportStore {
  public constructor(
    private readonly client: S3Client,
    private readonly location: ReportLocation,
  ) {}

  public async save(run: RunReportInput): Promise<ReportsStep> {
    const { bucket, prefix } = this.location;
    const keys = reportKeys(prefix, run.startedAt, run.runId);
    // Each file made as it is sent, one after the other: at 100,000 tags each is tens of MB, never held whole.
    const files: [key: string, body: () => Iterable<string>, type: string][] = [
      [
        keys.html,
        () =>
          htmlReportPieces(run.plan, {
            maxDeleteFraction: run.maxDeleteFraction,
            ...(run.outcome ? { report: run.outcome } : {}),
          }),
        HTML_TYPE,
      ],
    ];
    if (run.planJson !== false) {
      // The plan exactly as `plan --json` writes it, so `apply --plan FILE` can take it.
      files.push([keys.json, () => withNewline(jsonPieces(run.plan, ['repositories'], 2)), JSON_TYPE]);
    }
    const written: string[] = [];
    const failed: [key: string, reason: unknown][] = [];
    for (const [key, body, type] of files) {
      try {
        await uploadText(this.client, { Bucket: bucket, Key: key, ContentType: type }, body());
        written.push(key);
      } catch (reason) {
        failed.push([key, reason]);
      }
    }
    if (failed.length === 0) return { status: 'written', bucket, ...keys };
    return {
      status: 'failed',
      bucket,
      ...keys,
      written,
      error:
        failed.map(([key, reason]) => `s3://${bucket}/${key}: ${errorMessage(reason)}`).join('; ') +
        `. Check that the function may s3:PutObject on ${prefix}* in ${bucket}; the run itself is not affected.`,
    };
  }
}

function* withNewline(pieces: Iterable<string>): Generator<string> {
  yield* pieces;
  yield '\n';
}
