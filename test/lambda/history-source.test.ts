// The Lambda's history source from HISTORY_STORAGE: an S3 storage gives the sweep its point lookup of one revision
// link (a HeadObject of exactly that key, the grant lib/grants.ts gives), as the CLI's --storage s3://… does.
import { HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { SSMClient } from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { historyOf } from '../../lambda/history-source.ts';
import { configFor, context } from '../support/lambda-job.ts';

const HEX = 'ab'.repeat(32);

describe('the Lambda history source', () => {
  const s3 = mockClient(S3Client);
  afterEach(() => s3.reset());

  it('on S3 storage looks a revision link up with one HeadObject of its key, for the sweep', async () => {
    const at = new Date('2026-11-01T02:03:04Z');
    s3.on(HeadObjectCommand, {
      Bucket: 'registry-data',
      Key: `registry/docker/registry/v2/repositories/team/app/_manifests/revisions/sha256/${HEX}/link`,
    }).resolves({ LastModified: at });
    const config = configFor('https://registry.example', { HISTORY_STORAGE: 's3://registry-data/registry' });
    const source = historyOf(config, new SSMClient({ region: 'us-east-1' }))!(context);
    expect(source.revisionTime).toBeDefined();
    expect(await source.revisionTime!('team/app', `sha256:${HEX}`)).toBe(at.toISOString());
    expect(s3.commandCalls(HeadObjectCommand)).toHaveLength(1);
  });

  it('with storage none has no source at all', () => {
    const config = configFor('https://registry.example', { HISTORY_STORAGE: 'none' });
    expect(historyOf(config, new SSMClient({ region: 'us-east-1' }))).toBeUndefined();
  });
});
