import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  createdMillis,
  MEDIA_TYPES,
  parseConfigCreated,
  parseManifest,
  PLACEHOLDER_ANNOTATION,
  referrerSubject,
} from '../../lambda/core/manifest.ts';
import { plan } from '../../lambda/core/planner.ts';
import { parsePolicy } from '../../lambda/core/policy.ts';
import type { Inventory, ManifestInfo } from '../../lambda/core/model.ts';

// Real-world manifests and configs, byte for byte (see SOURCES.md beside them).
const FIXTURES = join(import.meta.dirname, '../fixtures/manifests');
const read = (name: string): Buffer => readFileSync(join(FIXTURES, name));
const digestOf = (b: Buffer): string => 'sha256:' + createHash('sha256').update(b).digest('hex');

function load(name: string, mediaType?: string): ManifestInfo {
  const body = read(name);
  const doc = JSON.parse(body.toString()) as {
    mediaType?: string;
    schemaVersion?: number;
    manifests?: unknown;
  };
  const type =
    mediaType ??
    doc.mediaType ??
    (doc.schemaVersion === 1
      ? MEDIA_TYPES.schema1Signed
      : doc.manifests
        ? MEDIA_TYPES.ociIndex
        : MEDIA_TYPES.ociManifest);
  return parseManifest(digestOf(body), type, body);
}

describe('real-world manifests', () => {
  it.each([
    ['docker-manifest-list.json', 'index', { children: 11 }],
    ['docker-manifest-list-variants.json', 'index', { children: 5 }],
    ['oci-index-buildkit-attestations.json', 'index', { children: 2, attestations: 1 }],
    ['oci-index-buildkit-attestations-multiplatform.json', 'index', { children: 12, attestations: 6 }],
    ['docker-schema2-manifest.json', 'image', { layers: 1 }],
    ['docker-schema2-manifest-octet-stream-config.json', 'image', { layers: 4 }],
    ['docker-schema2-manifest-reproducible-1970.json', 'image', { layers: 1 }],
    ['oci-image-manifest-annotations.json', 'image', { layers: 1, created: '2025-08-08T19:05:17Z' }],
    ['oci-image-manifest-buildkit-annotations.json', 'image', { created: '2025-04-09T16:52:51.101Z' }],
    ['oci-image-manifest-buildkit-source-date-epoch.json', 'image', {}],
    ['oci-attestation-manifest-buildkit.json', 'image', { layers: 1 }],
    ['cosign-signature-manifest.json', 'image', { layers: 1 }],
    ['helm-chart-manifest.json', 'artifact', { layers: 2, created: '1977-09-02T22:04:05Z' }],
    ['oci-artifact-referrer-sigstore-bundle.json', 'artifact', { subject: true }],
    ['oci-artifact-referrer-notation-signature.json', 'artifact', { subject: true }],
    ['oci-artifact-referrer-regclient.json', 'artifact', { subject: true }],
    [
      'docker-schema1-signed-manifest.json',
      'schema1',
      { layers: 2, created: '2015-08-06T23:53:22.608577814Z' },
    ],
    // Two of four layers are Windows foreign layers, served from mcr.microsoft.com, not stored here.
    ['windows-manifest-foreign-layers.json', 'image', { layers: 2 }],
  ] as const)('%s parses as %s', (file, kind, expected) => {
    const info = load(file);
    expect(info.kind).toBe(kind);
    const e = expected as {
      children?: number;
      attestations?: number;
      layers?: number;
      created?: string;
      subject?: boolean;
    };
    if (e.children !== undefined) expect(info.children).toHaveLength(e.children);
    if (e.attestations !== undefined)
      expect(info.children.filter((c) => c.attestation)).toHaveLength(e.attestations);
    if (e.layers !== undefined) expect(info.layers).toHaveLength(e.layers);
    if (e.created !== undefined) expect(info.created).toBe(e.created);
    if (e.subject) expect(info.subject).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  it('links a BuildKit index to its children and a referrer to its index subject', () => {
    const index = load('oci-index-buildkit-attestations.json');
    const child = digestOf(read('oci-image-manifest-buildkit-annotations.json'));
    const attestation = digestOf(read('oci-attestation-manifest-buildkit.json'));
    expect(index.children.map((c) => c.digest)).toEqual([child, attestation]);
    expect(load('oci-artifact-referrer-notation-signature.json').subject).toBe(index.digest);
  });

  it.each([
    ['docker-schema2-config.json', '2021-09-23T23:47:57.442225064Z', true],
    ['cosign-signature-config.json', '2023-02-17T09:25:33.91047962-08:00', true],
    ['windows-image-config.json', '2022-01-20T00:16:34.8596475Z', true],
    ['image-config-buildkit-source-date-epoch.json', '2015-10-21T07:28:00Z', true],
    ['image-config-reproducible-1970.json', '1970-01-01T00:00:00Z', false],
    ['helm-chart-config.json', undefined, false],
    ['oci-empty-config.json', undefined, false],
  ])('config %s: created %s, usable %s', (file, created, usable) => {
    const value = parseConfigCreated(read(file));
    expect(value).toBe(created);
    expect(createdMillis(value) !== undefined).toBe(usable);
  });

  it('plans sanely over every fixture: ages known where they exist, everything else kept as unknown age', () => {
    const files = [
      'docker-schema2-manifest.json',
      'docker-schema2-manifest-reproducible-1970.json',
      'helm-chart-manifest.json',
      'docker-schema1-signed-manifest.json',
      'oci-image-manifest-annotations.json',
      'windows-manifest-foreign-layers.json',
    ];
    const manifests = new Map<string, ManifestInfo>();
    const tags = files.map((f) => {
      const info = load(f);
      manifests.set(info.digest, info);
      return { tag: f.replace('.json', ''), digest: info.digest };
    });
    const inv: Inventory = {
      registry: 'http://r',
      repositories: [
        {
          name: 'fixtures',
          tags: tags.sort((a, b) => (a.tag < b.tag ? -1 : 1)),
          missing: [],
          untaggedSubjects: [],
        },
      ],
      manifests,
      errors: [],
      warnings: [],
    };
    const p = plan(
      inv,
      parsePolicy('rules:\n  - repositories: ["**"]\n    keep: { newest: 1 }\n', 't'),
      new Date('2026-01-01T00:00:00Z'),
    );
    const r = p.repositories[0]!;
    // Known ages: schema1 2015, OCI annotation 2025. The 2025 image is the one newest; the 2015 one goes.
    expect(r.deleteTags.map((t) => t.tag)).toEqual(['docker-schema1-signed-manifest']);
    // No config was read here, so the others have no known age and stay (helm's 1977 stamp is implausible).
    expect(r.kept.filter((k) => k.reasons.includes('unknown-age')).map((k) => k.tag)).toHaveLength(4);
    expect(p.complete).toBe(true);
  });
});

it('recognises the placeholder index the executor uses on 2.8, and nothing else', () => {
  const body = (annotations: Record<string, string>, manifests: unknown[] = []) =>
    new TextEncoder().encode(
      JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPES.ociIndex, manifests, annotations }),
    );
  expect(
    parseManifest('sha256:p', MEDIA_TYPES.ociIndex, body({ [PLACEHOLDER_ANNOTATION]: 'app:tag' }))
      .placeholder,
  ).toBe(true);
  expect(parseManifest('sha256:q', MEDIA_TYPES.ociIndex, body({ other: 'x' })).placeholder).toBeUndefined();
});

describe('referrer tags', () => {
  const hex = 'a'.repeat(64);
  it.each([
    [`sha256-${hex}`, `sha256:${hex}`],
    [`sha256-${hex}.sig`, `sha256:${hex}`],
    [`sha256-${hex}.att`, `sha256:${hex}`],
    [`sha256-${hex}.sbom`, `sha256:${hex}`],
    [`sha256-${hex}.other`, undefined],
    [`sha256-${hex.slice(1)}`, undefined],
    ['sha256-latest', undefined],
    ['v1.2.3', undefined],
  ])('%s → %s', (tag, subject) => {
    expect(referrerSubject(tag)).toBe(subject);
  });
});

describe('bad manifests', () => {
  it.each([
    ['not JSON', MEDIA_TYPES.ociManifest, '{', /not valid JSON/],
    ['an index without manifests', MEDIA_TYPES.ociIndex, '{"schemaVersion":2}', /no "manifests" list/],
    [
      'a manifest without a config digest',
      MEDIA_TYPES.ociManifest,
      '{"schemaVersion":2,"config":{}}',
      /config has no valid digest/,
    ],
    ['an unknown media type', 'text/html', '{"schemaVersion":2}', /unsupported media type "text\/html"/],
  ])('%s is a clear error', (_n, type, body, message) => {
    expect(() => parseManifest('sha256:x', type, new TextEncoder().encode(body))).toThrow(message);
  });
});
