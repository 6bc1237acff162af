// The journal kept as one S3 object in the construct's bucket (the Lambda's), under its own prefix. Only the
// function may write that bucket (its policy denies every other principal), and what the journal names is
// finished only when the live registry shows it is garbage. One PUT replaces the object whole.
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { JOURNAL_PREFIX } from '../core/contract.ts';
import { errorMessage } from '../core/errors.ts';
import { bodyBytes } from './manifest-cache-s3.ts';
import { decodeJournal, encodeJournal, type JournalEntry, type JournalStore } from '../core/journal.ts';

export interface S3JournalOptions {
  readonly registry: string;
  readonly warn: (message: string) => void;
}

/** `journal/<registry host>.json`: one object per registry, so a bucket shared by several janitors keeps them apart. */
export function journalKey(registryUrl: string): string {
  return `${JOURNAL_PREFIX}${new URL(registryUrl).host.replace(/[^A-Za-z0-9.-]/g, '_')}.json`;
}

function isMissing(err: unknown): boolean {
  const e = err as { name?: unknown; $metadata?: { httpStatusCode?: unknown } };
  return e.name === 'NoSuchKey' || e.name === 'NotFound' || e.$metadata?.httpStatusCode === 404;
}

export function s3Journal(client: S3Client, bucket: string, options: S3JournalOptions): JournalStore {
  const key = journalKey(options.registry);
  const where = `s3://${bucket}/${key}`;
  return {
    where,
    async load() {
      let text: string;
      try {
        const object = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
        text = (await bodyBytes(object.Body)).toString('utf8');
      } catch (err) {
        if (isMissing(err)) return [];
        options.warn(
          `journal ${where} could not be read (${errorMessage(err)}); leftovers of an interrupted run it names ` +
            `are not finished this run. Check that the function may s3:GetObject on ${JOURNAL_PREFIX}*`,
        );
        return [];
      }
      const decoded = decodeJournal(text, options.registry);
      if (decoded.problem !== undefined) {
        options.warn(`journal ${where} is not used: ${decoded.problem}`);
        return [];
      }
      if (decoded.rejected > 0)
        options.warn(`journal ${where}: ${decoded.rejected} malformed entries were ignored`);
      return decoded.entries;
    },
    async save(entries: readonly JournalEntry[]) {
      await client.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: key,
          Body: encodeJournal(options.registry, entries),
          ContentType: 'application/json',
        }),
      );
    },
  };
}
