// The compactor copies every fact of a manifest: a field it drops is a fact the planner silently loses (the
// placeholder mark once made leftover 2.8 placeholders "kept: unknown age" forever).
import { describe, expect, it } from 'vitest';
import { ManifestCompactor } from '../../lambda/core/compact.ts';
import type { ManifestInfo } from '../../lambda/core/model.ts';

// Every field set; `Required` makes this fail to compile when ManifestInfo gains one.
const everyField: Required<ManifestInfo> = {
  digest: 'sha256:aa',
  mediaType: 'application/vnd.oci.image.index.v1+json',
  kind: 'index',
  size: 10,
  config: { digest: 'sha256:cc', size: 3, mediaType: 'application/vnd.oci.image.config.v1+json' },
  layers: [{ digest: 'sha256:11', size: 5 }],
  children: [
    { digest: 'sha256:dd', mediaType: 'application/vnd.oci.image.manifest.v1+json', platform: 'linux/amd64' },
    { digest: 'sha256:ee', mediaType: 'application/vnd.oci.image.manifest.v1+json', attestation: true },
  ],
  subject: 'sha256:ff',
  artifactType: 'application/example',
  created: '2026-01-01T00:00:00Z',
  createdSource: 'annotation',
  placeholder: true,
};

describe('ManifestCompactor', () => {
  it('keeps every field of a manifest', () => {
    const out = new ManifestCompactor().compact(everyField, everyField.created, everyField.createdSource);
    expect(out).toEqual(everyField);
  });

  it('keeps the placeholder mark of an empty index', () => {
    const placeholder: ManifestInfo = {
      digest: 'sha256:ab',
      mediaType: 'application/vnd.oci.image.index.v1+json',
      kind: 'index',
      size: 200,
      layers: [],
      children: [],
      placeholder: true,
    };
    expect(new ManifestCompactor().compact(placeholder, undefined, undefined).placeholder).toBe(true);
  });

  const image: ManifestInfo = {
    digest: 'sha256:a1',
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    kind: 'image',
    size: 400,
    config: { digest: 'sha256:c1', size: 3, mediaType: 'application/vnd.oci.image.config.v1+json' },
    layers: [
      { digest: 'sha256:l1', size: 5 },
      { digest: 'sha256:l2', size: 6 },
    ],
    children: [],
  };

  it.each([
    ['every field', everyField],
    ['an image without an age yet', image],
    ['an image with an artifact type', { ...image, artifactType: 'application/example' }],
  ])('dates a compact manifest (%s) exactly as compacting it again would, reusing its parts', (_, info) => {
    const compactor = new ManifestCompactor();
    const stored = compactor.compact(info, undefined, undefined);
    const dated = compactor.withAge(stored, '2026-02-02T00:00:00Z', 'config');
    const again = new ManifestCompactor().compact(stored, '2026-02-02T00:00:00Z', 'config');
    expect(dated).toEqual(again);
    // The same fields in the same order (the inventory's JSON, a workflow step's output, is written from it).
    expect(JSON.stringify(dated)).toBe(JSON.stringify(again));
    expect(dated).not.toBe(stored);
    expect(dated.layers).toBe(stored.layers);
    expect(dated.children).toBe(stored.children);
    expect(dated.config).toBe(stored.config);
    expect(stored.created).toBe(info === everyField ? undefined : info.created);
  });
});
