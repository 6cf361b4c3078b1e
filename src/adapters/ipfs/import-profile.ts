/**
 * How files become UnixFS DAGs: Kubo's two import profiles as data, and the overrides that
 * `ipfs add --cid-version` and `--raw-leaves` apply on top of them.
 *
 * The JS importer's own defaults equal `ipfs add --cid-version=1`, not bare `ipfs add`
 * (FACTS "IPFS"), so `toImporterOptions` spells out every setting that can change a CID.
 * Profiles: IPIP-499 (https://specs.ipfs.tech/ipips/ipip-0499/) and Kubo's `config/profile.go`.
 */
import { fixedSize } from 'ipfs-unixfs-importer/chunker';
import { balanced } from 'ipfs-unixfs-importer/layout';
import type { ImporterOptions } from 'ipfs-unixfs-importer';
import { z } from 'zod';
import type { CidProfile } from '../../ports/ipfs-store.js';

export const CID_PROFILES = ['unixfs-v0-2015', 'unixfs-v1-2025'] as const satisfies readonly CidProfile[];

/** Everything about an import that changes the resulting CIDs. Plain data, so it can be logged and compared. */
export interface ImportSettings {
  profile: CidProfile;
  cidVersion: 0 | 1;
  /** Leaves are raw blocks (codec raw) instead of dag-pb nodes wrapping UnixFS file data. */
  rawLeaves: boolean;
  hash: 'sha2-256';
  /** Fixed-size chunker (`size-N` in Kubo). */
  chunkSize: number;
  /** Balanced DAG: most links in one file node (`Import.UnixFSFileMaxLinks`). */
  maxChildrenPerNode: number;
  /** A directory becomes a HAMT shard when its estimated size is strictly greater than this. */
  hamtThresholdBytes: number;
  /**
   * How the directory size is estimated (`Import.UnixFSHAMTDirectorySizeEstimation`):
   * `links-bytes` sums name + CID bytes of each link (Kubo "links"), `block-bytes` is the
   * serialized block size (Kubo "block").
   */
  hamtSizeEstimation: 'links-bytes' | 'block-bytes';
  /** 2^bits children per HAMT node (`Import.UnixFSHAMTDirectoryMaxFanout` = 256). */
  hamtFanoutBits: number;
}

/** The two profiles exactly as Kubo's `ipfs config profile apply <name>` sets `Import.*`. */
export const IMPORT_PROFILES: Readonly<Record<CidProfile, Readonly<ImportSettings>>> = {
  'unixfs-v0-2015': {
    profile: 'unixfs-v0-2015',
    cidVersion: 0,
    rawLeaves: false,
    hash: 'sha2-256',
    chunkSize: 262_144,
    maxChildrenPerNode: 174,
    hamtThresholdBytes: 262_144,
    hamtSizeEstimation: 'links-bytes',
    hamtFanoutBits: 8,
  },
  'unixfs-v1-2025': {
    profile: 'unixfs-v1-2025',
    cidVersion: 1,
    rawLeaves: true,
    hash: 'sha2-256',
    chunkSize: 1_048_576,
    maxChildrenPerNode: 1024,
    hamtThresholdBytes: 262_144,
    hamtSizeEstimation: 'block-bytes',
    hamtFanoutBits: 8,
  },
};

export const importOptionsInputSchema = z
  .object({
    /**
     * Kubo profile name. Unset means Kubo's built-in defaults, which equal `unixfs-v0-2015`
     * except that `cidVersion: 1` then also turns raw leaves on.
     */
    profile: z.enum(CID_PROFILES).optional(),
    /** `--cid-version`: overrides the profile's CID version. */
    cidVersion: z.union([z.literal(0), z.literal(1)]).optional(),
    /** `--raw-leaves[=bool]`: overrides the profile's (or the CID version's) leaf encoding. */
    rawLeaves: z.boolean().optional(),
  })
  .strict();

export type ImportOptionsInput = z.input<typeof importOptionsInputSchema>;

/**
 * Applies the overrides the way Kubo's `ipfs add` does (core/commands/add.go and
 * core/coreiface/options/unixfs.go): an explicit `--raw-leaves` always wins; otherwise a profile
 * that was chosen explicitly keeps its own `Import.UnixFSRawLeaves`, and only on Kubo's bare
 * defaults does `--cid-version=1` switch raw leaves on.
 */
export function resolveImportSettings(input: ImportOptionsInput = {}): ImportSettings {
  const parsed = importOptionsInputSchema.parse(input);
  const base = IMPORT_PROFILES[parsed.profile ?? 'unixfs-v0-2015'];
  const cidVersion = parsed.cidVersion ?? base.cidVersion;
  const rawLeaves = parsed.rawLeaves ?? (parsed.profile === undefined ? cidVersion === 1 : base.rawLeaves);
  return { ...base, cidVersion, rawLeaves };
}

/** Every importer option that can change a CID, set explicitly (never left to the importer's defaults). */
export function toImporterOptions(settings: ImportSettings): ImporterOptions {
  return {
    cidVersion: settings.cidVersion,
    rawLeaves: settings.rawLeaves,
    // Kubo wraps non-raw leaves as UnixFS `file` nodes and stores a one-chunk file as that node.
    leafType: 'file',
    reduceSingleLeafToSelf: true,
    chunker: fixedSize({ chunkSize: settings.chunkSize }),
    layout: balanced({ maxChildrenPerNode: settings.maxChildrenPerNode }),
    shardSplitThresholdBytes: settings.hamtThresholdBytes,
    shardSplitStrategy: settings.hamtSizeEstimation,
    shardFanoutBits: settings.hamtFanoutBits,
    fieldOrder: 'links-first',
    wrapWithDirectory: false,
  };
}

/** `{ profile?, cidVersion?, rawLeaves? }` → options for `ipfs-unixfs-importer`. */
export function resolveImportOptions(input: ImportOptionsInput = {}): ImporterOptions {
  return toImporterOptions(resolveImportSettings(input));
}
