import { describe, expect, it } from 'vitest';
import { IMPORT_PROFILES, importOptionsInputSchema, resolveImportOptions, resolveImportSettings } from './import-profile.js';
import type { ImportOptionsInput } from './import-profile.js';

describe('resolveImportSettings', () => {
  // Kubo core/commands/add.go: flags win over the config a profile wrote; on bare defaults
  // --cid-version=1 also turns raw leaves on (core/coreiface/options/unixfs.go).
  it.each<[string, ImportOptionsInput, { cidVersion: 0 | 1; rawLeaves: boolean; chunkSize: number; maxChildrenPerNode: number }]>([
    ['bare ipfs add', {}, { cidVersion: 0, rawLeaves: false, chunkSize: 262_144, maxChildrenPerNode: 174 }],
    ['--cid-version=1', { cidVersion: 1 }, { cidVersion: 1, rawLeaves: true, chunkSize: 262_144, maxChildrenPerNode: 174 }],
    ['--cid-version=1 --raw-leaves=false', { cidVersion: 1, rawLeaves: false }, { cidVersion: 1, rawLeaves: false, chunkSize: 262_144, maxChildrenPerNode: 174 }],
    ['--raw-leaves', { rawLeaves: true }, { cidVersion: 0, rawLeaves: true, chunkSize: 262_144, maxChildrenPerNode: 174 }],
    ['--cid-version=0', { cidVersion: 0 }, { cidVersion: 0, rawLeaves: false, chunkSize: 262_144, maxChildrenPerNode: 174 }],
    ['unixfs-v0-2015', { profile: 'unixfs-v0-2015' }, { cidVersion: 0, rawLeaves: false, chunkSize: 262_144, maxChildrenPerNode: 174 }],
    // The profile set Import.UnixFSRawLeaves=false explicitly, so --cid-version=1 keeps dag-pb leaves.
    ['unixfs-v0-2015 --cid-version=1', { profile: 'unixfs-v0-2015', cidVersion: 1 }, { cidVersion: 1, rawLeaves: false, chunkSize: 262_144, maxChildrenPerNode: 174 }],
    ['unixfs-v1-2025', { profile: 'unixfs-v1-2025' }, { cidVersion: 1, rawLeaves: true, chunkSize: 1_048_576, maxChildrenPerNode: 1024 }],
    ['unixfs-v1-2025 --raw-leaves=false', { profile: 'unixfs-v1-2025', rawLeaves: false }, { cidVersion: 1, rawLeaves: false, chunkSize: 1_048_576, maxChildrenPerNode: 1024 }],
    ['unixfs-v1-2025 --cid-version=0', { profile: 'unixfs-v1-2025', cidVersion: 0 }, { cidVersion: 0, rawLeaves: true, chunkSize: 1_048_576, maxChildrenPerNode: 1024 }],
  ])('%s', (_label, input, expected) => {
    expect(resolveImportSettings(input)).toMatchObject(expected);
  });

  it('keeps the HAMT settings of each profile', () => {
    expect(resolveImportSettings({ profile: 'unixfs-v0-2015' })).toMatchObject({
      hamtThresholdBytes: 262_144,
      hamtSizeEstimation: 'links-bytes',
      hamtFanoutBits: 8,
      hash: 'sha2-256',
    });
    expect(resolveImportSettings({ profile: 'unixfs-v1-2025' })).toMatchObject({
      hamtThresholdBytes: 262_144,
      hamtSizeEstimation: 'block-bytes',
      hamtFanoutBits: 8,
      hash: 'sha2-256',
    });
  });

  it('does not let callers change the profile tables', () => {
    const settings = resolveImportSettings({ profile: 'unixfs-v0-2015', cidVersion: 1 });
    settings.chunkSize = 1;
    expect(IMPORT_PROFILES['unixfs-v0-2015']).toMatchObject({ cidVersion: 0, chunkSize: 262_144 });
  });
});

describe('importOptionsInputSchema', () => {
  it.each([
    [{ profile: 'unixfs-v2-2030' }, 'profile'],
    [{ cidVersion: 2 }, 'cidVersion'],
    [{ rawLeaves: 'false' }, 'rawLeaves'],
    [{ chunker: 'size-1024' }, 'chunker'],
  ])('refuses %j and names the field', (input, field) => {
    const result = importOptionsInputSchema.safeParse(input);
    expect(result.success).toBe(false);
    expect(JSON.stringify(result.error?.issues)).toContain(field);
  });
});

describe('resolveImportOptions', () => {
  it('sets every option that changes a CID, never leaving one to the importer default', () => {
    const options = resolveImportOptions({});
    expect(options).toMatchObject({
      cidVersion: 0,
      rawLeaves: false,
      leafType: 'file',
      reduceSingleLeafToSelf: true,
      shardSplitThresholdBytes: 262_144,
      shardSplitStrategy: 'links-bytes',
      shardFanoutBits: 8,
      fieldOrder: 'links-first',
      wrapWithDirectory: false,
    });
    expect(options.chunker).toBeTypeOf('function');
    expect(options.layout).toBeTypeOf('function');
  });
});
