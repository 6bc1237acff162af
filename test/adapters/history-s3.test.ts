// The --storage s3:// URL: what the S3 driver's bucket and rootdirectory become, and every malformed form
// refused with what was wrong (the listing itself: test/integration/history-s3.test.ts).
import { describe, expect, it } from 'vitest';
import { parseS3StorageUrl, s3StorageUrl } from '../../lambda/adapters/history-s3.ts';
import { ConfigError } from '../../lambda/core/errors.ts';

describe('parseS3StorageUrl', () => {
  it.each([
    ['s3://registry-data', { bucket: 'registry-data', prefix: '' }, 's3://registry-data'],
    ['s3://registry-data/', { bucket: 'registry-data', prefix: '' }, 's3://registry-data'],
    [
      's3://registry-data/registry',
      { bucket: 'registry-data', prefix: 'registry' },
      's3://registry-data/registry',
    ],
    ['s3://my.bucket-1/a/b/', { bucket: 'my.bucket-1', prefix: 'a/b' }, 's3://my.bucket-1/a/b'],
  ])('%s is bucket and prefix %j', (url, location, canonical) => {
    expect(parseS3StorageUrl(url)).toEqual(location);
    expect(s3StorageUrl(location)).toBe(canonical);
  });

  it.each([
    ['s3://', /the bucket name is missing/],
    ['s3:///registry', /the bucket name is missing/],
    ['s3:/bucket/registry', /not an s3:\/\/ URL/],
    ['S3://bucket', /not an s3:\/\/ URL/],
    ['s3://ab', /"ab" is not a valid bucket name/],
    ['s3://Upper/registry', /"Upper" is not a valid bucket name/],
    ['s3://under_score', /"under_score" is not a valid bucket name/],
    ['s3://-dash', /"-dash" is not a valid bucket name/],
    ['s3://a..b', /"a\.\.b" is not a valid bucket name/],
    ['s3://bucket//registry', /empty segment/],
    ['s3://bucket/a b', /the prefix segment "a b" has a space/],
    ['s3://bucket/registry?versionId=1', /has a space, "\?"/],
  ])('refuses %s', (url, message) => {
    let error: unknown;
    try {
      parseS3StorageUrl(url);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toMatch(message);
    expect((error as Error).message).toContain(`--storage ${url}: `);
    expect((error as Error).message).toContain('s3://BUCKET/ROOTDIRECTORY');
  });
});
