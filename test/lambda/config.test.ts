// loadConfig (the stack's environment contract) and parseInvokePayload (scheduled vs manual invokes).
import { describe, expect, it } from 'vitest';
import { loadConfig, parseInvokePayload } from '../../lambda/config.ts';
import { ConfigError } from '../../lambda/core/errors.ts';

const POLICY = JSON.stringify({ rules: [{ repositories: ['team1/**'], keep: { newest: 3 } }] });
const MINIMAL = {
  REGISTRY_URL: 'https://registry.internal:5000',
  GC_INSTANCE_ID: 'i-0123456789abcdef0',
  GC_DOCUMENT_NAME: 'Stack-GcDocument-AbC123',
  RETENTION_POLICY: POLICY,
};

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig', () => {
  it('applies the documented defaults to the minimal environment', () => {
    const config = loadConfig(MINIMAL);
    expect(config).toEqual({
      registryUrl: 'https://registry.internal:5000',
      gc: {
        target: { instanceId: 'i-0123456789abcdef0' },
        documentName: 'Stack-GcDocument-AbC123',
        containerName: 'registry',
        mode: 'readonly',
        deleteUntagged: false,
        timeoutSeconds: 3600,
      },
      policy: expect.anything(),
      dryRun: true,
      maxDeleteFraction: 0.5,
      insecureTls: false,
      concurrency: 64,
      allowInsecureHttp: false,
      allowManualApply: false,
      tokenRealmHosts: [],
      history: { kind: 'container' },
      undoWindowHours: 24,
    });
    expect(config.policy.document).toEqual(JSON.parse(POLICY));
  });

  it('reads every variable of the contract', () => {
    const config = loadConfig({
      REGISTRY_URL: 'http://10.0.0.5:5000/',
      GC_INSTANCE_TAG: 'Role=docker-registry',
      GC_DOCUMENT_NAME: 'Stack-GcDocument-AbC123',
      GC_CONTAINER_NAME: 'my_registry.1',
      GC_CONFIG_PATH: '/etc/distribution/config.yml',
      GC_MODE: 'offline',
      GC_DELETE_UNTAGGED: 'true',
      GC_LOG_GROUP: '/registry-janitor/gc',
      GC_TIMEOUT_SECONDS: '7200',
      RETENTION_POLICY: POLICY,
      DRY_RUN: 'false',
      MAX_DELETE_FRACTION: '0.25',
      CREDENTIALS_PARAMETER: '/registry-janitor/credentials',
      CA_PARAMETER: 'arn:aws:ssm:eu-west-1:123456789012:parameter/registry/ca',
      INSECURE_TLS: 'true',
      CONCURRENCY: '8',
      CACHE_BUCKET: 'janitor-cache-bucket',
      ALLOW_INSECURE_HTTP: 'true',
      TOKEN_REALM_HOSTS: 'auth.internal, auth2.internal:5001',
      MAX_LIST_PAGES: '50',
      MAX_LIST_ENTRIES: '5000',
      POWERTOOLS_SERVICE_NAME: 'registry-janitor',
    });
    expect(config).toMatchObject({
      registryUrl: 'http://10.0.0.5:5000',
      gc: {
        target: { tagKey: 'Role', tagValue: 'docker-registry' },
        documentName: 'Stack-GcDocument-AbC123',
        containerName: 'my_registry.1',
        configPath: '/etc/distribution/config.yml',
        mode: 'offline',
        deleteUntagged: true,
        logGroup: '/registry-janitor/gc',
        timeoutSeconds: 7200,
      },
      dryRun: false,
      maxDeleteFraction: 0.25,
      credentialsParameter: '/registry-janitor/credentials',
      caParameter: 'arn:aws:ssm:eu-west-1:123456789012:parameter/registry/ca',
      insecureTls: true,
      concurrency: 8,
      cacheBucket: 'janitor-cache-bucket',
      allowInsecureHttp: true,
      tokenRealmHosts: ['auth.internal', 'auth2.internal:5001'],
      maxListPages: 50,
      maxListEntries: 5000,
    });
  });

  it('spells the registry URL one way: its origin', () => {
    expect(loadConfig({ ...MINIMAL, REGISTRY_URL: 'HTTPS://Registry.Internal:443//' }).registryUrl).toBe(
      'https://registry.internal',
    );
  });

  it('never echoes a registry URL that carries a password', () => {
    const err = configError(() => loadConfig({ ...MINIMAL, REGISTRY_URL: 'https://u:hunter2@r.internal' }));
    expect(err.message).toContain('REGISTRY_URL: must not contain credentials');
    expect(err.message).not.toContain('hunter2');
  });

  it('lower-cases the token realm hosts, as the registry client compares them', () => {
    expect(
      loadConfig({ ...MINIMAL, TOKEN_REALM_HOSTS: 'Auth.Internal, ,auth2:5001' }).tokenRealmHosts,
    ).toEqual(['auth.internal', 'auth2:5001']);
  });

  it('writes reports only where REPORTS_BUCKET says, under reports/ unless REPORTS_PREFIX says otherwise', () => {
    expect(loadConfig(MINIMAL)).not.toHaveProperty('reports');
    expect(loadConfig({ ...MINIMAL, REPORTS_BUCKET: 'janitor-bucket' }).reports).toEqual({
      bucket: 'janitor-bucket',
      prefix: 'reports/',
    });
    expect(
      loadConfig({ ...MINIMAL, REPORTS_BUCKET: 'janitor-bucket', REPORTS_PREFIX: 'janitor/runs/' }).reports,
    ).toEqual({ bucket: 'janitor-bucket', prefix: 'janitor/runs/' });
  });

  it.each([
    { value: undefined, history: { kind: 'container' } },
    { value: 'container', history: { kind: 'container' } },
    { value: 'none', history: { kind: 'none' } },
    {
      value: 's3://registry-data/registry/',
      history: { kind: 's3', location: { bucket: 'registry-data', prefix: 'registry' } },
    },
    {
      value: 's3://registry-data',
      history: { kind: 's3', location: { bucket: 'registry-data', prefix: '' } },
    },
  ])('reads HISTORY_STORAGE=$value as where untagged history is listed from', ({ value, history }) => {
    const config = loadConfig({
      ...MINIMAL,
      ...(value === undefined ? {} : { HISTORY_STORAGE: value }),
      HISTORY_LISTING_BUCKET: 'janitor-bucket',
    });
    expect(config.history).toEqual(history);
    expect(config.listingBucket).toBe('janitor-bucket');
  });

  it.each([
    { env: {}, hours: 24 },
    { env: { HISTORY_STORAGE: 's3://registry-data/registry' }, hours: 24 },
    { env: { UNDO_WINDOW_HOURS: '48' }, hours: 48 },
    { env: { UNDO_WINDOW_HOURS: '0' }, hours: 0 },
    { env: { UNDO_WINDOW_HOURS: ' 8760 ' }, hours: 8760 },
    { env: { HISTORY_STORAGE: 'none' }, hours: undefined },
    { env: { HISTORY_STORAGE: 'none', UNDO_WINDOW_HOURS: '' }, hours: undefined },
  ])(
    'two-phase whenever untagged history is listed: $env gives an undo window of $hours h',
    ({ env, hours }) => {
      expect(loadConfig({ ...MINIMAL, ...env }).undoWindowHours).toBe(hours);
    },
  );

  it('refuses an undo window with storage none, saying why and how to fix it', () => {
    const err = configError(() =>
      loadConfig({ ...MINIMAL, HISTORY_STORAGE: 'none', UNDO_WINDOW_HOURS: '24' }),
    );
    expect(err.message).toContain('UNDO_WINDOW_HOURS is set, but HISTORY_STORAGE is none');
    expect(err.message).toContain('without a storage listing the sweep cannot see untagged manifests');
    expect(err.message).toContain('or unset UNDO_WINDOW_HOURS to delete by digest');
  });

  it('treats empty variables as unset', () => {
    const config = loadConfig({ ...MINIMAL, DRY_RUN: '', GC_MODE: '  ', CONCURRENCY: '' });
    expect(config.dryRun).toBe(true);
    expect(config.gc.mode).toBe('readonly');
    expect(config.concurrency).toBe(64);
  });

  it.each([
    { env: { REGISTRY_URL: undefined }, names: 'REGISTRY_URL is not set' },
    {
      env: { REGISTRY_URL: 'registry.internal:5000' },
      names: 'REGISTRY_URL="registry.internal:5000" must start with',
    },
    { env: { REGISTRY_URL: 'not a url' }, names: 'REGISTRY_URL="not a url" is not a URL' },
    { env: { REGISTRY_URL: 'https://r.internal/v2/' }, names: 'without a path' },
    { env: { REGISTRY_URL: 'https://u:p@r.internal' }, names: 'must not contain credentials' },
    { env: { GC_INSTANCE_ID: undefined }, names: 'neither GC_INSTANCE_ID nor GC_INSTANCE_TAG' },
    { env: { GC_INSTANCE_TAG: 'Role=x' }, names: 'GC_INSTANCE_ID and GC_INSTANCE_TAG are both set' },
    { env: { GC_INSTANCE_ID: 'i-123' }, names: 'GC_INSTANCE_ID="i-123" is not an instance id' },
    {
      env: { GC_DOCUMENT_NAME: undefined },
      names: "GC_DOCUMENT_NAME is not set: give the name of the janitor's",
    },
    {
      env: { GC_DOCUMENT_NAME: 'AWS RunShellScript' },
      names: 'GC_DOCUMENT_NAME="AWS RunShellScript" is not',
    },
    {
      env: { GC_INSTANCE_ID: undefined, GC_INSTANCE_TAG: 'Role' },
      names: 'GC_INSTANCE_TAG "Role" is not Key=Value',
    },
    {
      env: { GC_CONTAINER_NAME: 'reg;rm -rf /' },
      names: 'GC_CONTAINER_NAME="reg;rm -rf /" is not a container name',
    },
    { env: { GC_CONFIG_PATH: 'config.yml' }, names: 'GC_CONFIG_PATH="config.yml" is not an absolute path' },
    { env: { GC_MODE: 'fast' }, names: 'GC_MODE="fast" is not one of readonly, offline, online' },
    { env: { GC_DELETE_UNTAGGED: 'yes' }, names: 'GC_DELETE_UNTAGGED="yes" is not true or false' },
    { env: { GC_LOG_GROUP: 'bad group!' }, names: 'GC_LOG_GROUP="bad group!"' },
    {
      env: { GC_TIMEOUT_SECONDS: '0' },
      names: 'GC_TIMEOUT_SECONDS="0" is not a whole number from 1 to 172800',
    },
    { env: { GC_TIMEOUT_SECONDS: '1.5' }, names: 'GC_TIMEOUT_SECONDS="1.5"' },
    { env: { RETENTION_POLICY: undefined }, names: 'RETENTION_POLICY is not set' },
    { env: { RETENTION_POLICY: 'rules: []' }, names: 'RETENTION_POLICY is not valid JSON' },
    {
      env: { RETENTION_POLICY: JSON.stringify({ rules: [{ repositories: ['**'], keep: { newest: -1 } }] }) },
      names: 'RETENTION_POLICY: rules[0].keep.newest: expected a whole number >= 0',
    },
    { env: { DRY_RUN: 'False' }, names: 'DRY_RUN="False" is not true or false' },
    { env: { MAX_DELETE_FRACTION: '1.5' }, names: 'MAX_DELETE_FRACTION="1.5" is not a number from 0 to 1' },
    { env: { MAX_DELETE_FRACTION: '50%' }, names: 'MAX_DELETE_FRACTION="50%"' },
    {
      env: { CREDENTIALS_PARAMETER: 'my secret' },
      names: 'CREDENTIALS_PARAMETER="my secret" is not an SSM parameter',
    },
    { env: { CA_PARAMETER: 'a b' }, names: 'CA_PARAMETER="a b" is not an SSM parameter' },
    { env: { INSECURE_TLS: '1' }, names: 'INSECURE_TLS="1" is not true or false' },
    { env: { CONCURRENCY: '0' }, names: 'CONCURRENCY="0" is not a whole number from 1 to 1024' },
    { env: { MAX_LIST_PAGES: '0' }, names: 'MAX_LIST_PAGES="0" is not a whole number from 1 to' },
    { env: { MAX_LIST_ENTRIES: 'lots' }, names: 'MAX_LIST_ENTRIES="lots" is not a whole number' },
    { env: { CACHE_BUCKET: 'Bad_Bucket' }, names: 'CACHE_BUCKET="Bad_Bucket" is not an S3 bucket name' },
    { env: { ALLOW_MANUAL_APPLY: 'yes' }, names: 'ALLOW_MANUAL_APPLY="yes" is not true or false' },
    {
      env: { TOKEN_REALM_HOSTS: 'https://auth.internal' },
      names: 'TOKEN_REALM_HOSTS="https://auth.internal" is not a host',
    },
    { env: { REPORTS_BUCKET: 'Bad_Bucket' }, names: 'REPORTS_BUCKET="Bad_Bucket" is not an S3 bucket name' },
    {
      env: { HISTORY_STORAGE: 'filesystem' },
      names: 'HISTORY_STORAGE="filesystem" is not one of container (the default',
    },
    {
      env: { HISTORY_STORAGE: 's3://registry-data//x' },
      names: 'HISTORY_STORAGE="s3://registry-data//x" the prefix has an empty segment ("//")',
    },
    ...['-1', '1.5', '8761', 'a day'].map((hours) => ({
      env: { UNDO_WINDOW_HOURS: hours },
      names: `UNDO_WINDOW_HOURS="${hours}" is not a whole number of hours from 0 to 8760, e.g. 24`,
    })),
    {
      env: { HISTORY_LISTING_BUCKET: 'Bad_Bucket' },
      names: 'HISTORY_LISTING_BUCKET="Bad_Bucket" is not an S3 bucket name',
    },
    {
      env: { REPORTS_BUCKET: 'b-1', REPORTS_PREFIX: '/reports' },
      names: 'REPORTS_PREFIX="/reports" is not a key prefix like reports/',
    },
    {
      env: { REGISTRY_PASSWORD: 'hunter2' },
      names: 'REGISTRY_PASSWORD is set, but registry credentials never come',
    },
  ])('fails naming the variable: $names', ({ env, names }) => {
    const err = configError(() => loadConfig({ ...MINIMAL, ...env }));
    expect(err.message).toContain(names);
  });

  it('lists every problem at once', () => {
    const err = configError(() => loadConfig({ DRY_RUN: 'maybe' }));
    for (const name of ['REGISTRY_URL', 'GC_INSTANCE_ID', 'RETENTION_POLICY', 'DRY_RUN']) {
      expect(err.message).toContain(name);
    }
  });

  it('never echoes a password found in the environment', () => {
    const err = configError(() => loadConfig({ ...MINIMAL, REGISTRY_PASSWORD: 'hunter2' }));
    expect(err.message).not.toContain('hunter2');
  });
});

describe('parseInvokePayload', () => {
  it.each([
    { name: 'the Scheduler input {}', event: {} },
    { name: 'no payload', event: undefined },
    { name: 'null', event: null },
    {
      name: 'an EventBridge scheduled event',
      event: {
        version: '0',
        id: '89d1a02d-5ec7-412e-82f5-13505f849b41',
        'detail-type': 'Scheduled Event',
        source: 'aws.events',
        account: '123456789012',
        time: '2026-01-01T03:00:00Z',
        region: 'us-east-1',
        resources: ['arn:aws:events:us-east-1:123456789012:rule/nightly'],
        detail: {},
      },
    },
  ])('runs the configured job for $name', ({ event }) => {
    expect(parseInvokePayload(event)).toEqual({ trigger: 'schedule' });
  });

  it.each([
    { event: { dryRun: true }, overrides: { dryRun: true } },
    { event: { dryRun: false, skipGc: true }, overrides: { dryRun: false, skipGc: true } },
    {
      event: { repositories: ['team1/**', 'ci/*-cache'] },
      overrides: { repositories: ['team1/**', 'ci/*-cache'] },
    },
  ])('accepts the manual payload $event', ({ event, overrides }) => {
    expect(parseInvokePayload(event)).toEqual({ trigger: 'manual', ...overrides });
  });

  it('refuses unknown keys, naming them and listing the allowed ones', () => {
    const err = configError(() => parseInvokePayload({ dryrun: true, force: 1 }));
    expect(err.message).toContain('unknown keys "dryrun", "force"');
    expect(err.message).toContain('the allowed keys are dryRun, repositories, skipGc');
  });

  it.each([
    { event: { dryRun: 'true' }, message: 'dryRun: expected true or false' },
    { event: { skipGc: 1 }, message: 'skipGc: expected true or false' },
    { event: { repositories: 'team1/**' }, message: 'repositories: expected a list of repository globs' },
    { event: { repositories: [] }, message: 'repositories: expected at least one repository glob' },
    { event: { repositories: ['ok', 3] }, message: 'repositories[1]: expected a repository glob string' },
    { event: { repositories: ['team1/***'] }, message: 'repositories[0] "team1/***"' },
    { event: [], message: 'must be a JSON object' },
    { event: 'dryRun', message: 'must be a JSON object' },
    {
      event: { source: 'aws.s3', 'detail-type': 'Object Created' },
      message: 'EventBridge event "Object Created"',
    },
  ])('refuses $event', ({ event, message }) => {
    expect(configError(() => parseInvokePayload(event)).message).toContain(message);
  });
});
