/**
 * The provenance record of a run (README "Provenance"): one small document that says what ran —
 * repository, commit, task definition, parameters, who asked and who approved, the image — and
 * what came of it — the CIDs of its outputs, exit code, conclusion, times. It is stored as one
 * DAG-JSON block beside the outputs and pinned like them, so its CID names exactly these facts,
 * and `task-mgmt verify <cid>` checks the record and every output against their bytes through any
 * gateway, without trusting the app that wrote it.
 *
 * Built here as plain data from the run as it ends; the IPFS adapter encodes it (DAG-JSON sorts
 * map keys, so equal records give equal CIDs). CIDs are strings, not IPLD links: the record is a
 * single block that never drags other DAGs (a needed task's outputs may be collected first) into a
 * pin or a CAR of its own. Times are ISO 8601 in UTC, and every field is present, null when unknown.
 */
import { z } from 'zod';
import { triggers, type OutputFile, type Run, type RunState } from './run.js';

export const PROVENANCE_TYPE = 'task-mgmt/provenance';

/** Check-run conclusions, as GitHub names them, of the states a run ends in. */
const conclusions = { succeeded: 'success', failed: 'failure', cancelled: 'cancelled', timed_out: 'timed_out' } as const;
type FinalState = keyof typeof conclusions;

const isoTime = z.iso.datetime();

/** The record, version 1 (DESIGN "Provenance record"). `verify` parses what a gateway returns with it. */
export const provenanceRecordSchema = z.object({
  type: z.literal(PROVENANCE_TYPE),
  version: z.literal(1),
  /** `owner/name`. */
  repository: z.string(),
  /** Pull request or issue the run was asked for on; null for a branch run asked for through the API. */
  number: z.number().int().nullable(),
  /** The commit that ran. */
  sha: z.string(),
  /** Digest of the files that define the task at `sha`. */
  manifestDigest: z.string(),
  task: z.string(),
  taskType: z.string(),
  /** The `key=value` parameters asked for. */
  params: z.record(z.string(), z.string()),
  /** Who asked (a GitHub login, `service:<digest>` or the App's slug) and how (comment, rerun, api, schedule). */
  requester: z.object({ login: z.string(), how: z.enum(triggers) }),
  /** The approving reviews the policy counted; `reviewer` is null only for runs recorded before reviewers were kept. */
  approvals: z.array(z.object({ reviewId: z.number().int(), reviewer: z.string().nullable(), commit: z.string() })),
  /** The image that ran (`docker inspect` Id) and the digest of the image it was built FROM; null for task types that start no container. */
  image: z.object({ id: z.string(), baseDigest: z.string().nullable() }).nullable(),
  /** Root CIDs of the outputs of the tasks it needed, by task name (mounted at /in/<task>). */
  inputs: z.record(z.string(), z.string()),
  /**
   * What it wrote to /out: the root and its top-level entries; null when nothing was added (it
   * failed first). Past MAX_LISTED_FILES entries, the first of them by name are listed and
   * `unlisted` counts the rest (all of them are below the root, whose whole DAG verify checks).
   */
  outputs: z
    .object({ root: z.string(), files: z.record(z.string(), z.string()), unlisted: z.number().int().positive().optional() })
    .nullable(),
  exitCode: z.number().int().nullable(),
  conclusion: z.enum(['success', 'failure', 'cancelled', 'timed_out']),
  queuedAt: isoTime,
  startedAt: isoTime.nullable(),
  finishedAt: isoTime,
  /** Until when the record and the outputs were pinned when it was written (`/pin` may extend the pins since). */
  pinnedUntil: isoTime,
  taskMgmtVersion: z.string(),
});
export type ProvenanceRecord = z.infer<typeof provenanceRecordSchema>;

/** What the record says beyond the run record itself. */
export interface ProvenanceFacts {
  /** The run as it ends: a final state and `finishedAt` (the time the end is recorded with). */
  run: Run;
  image: { id: string; baseDigest: string | null } | null;
  /** Root CID of each needed task's outputs, by task name. */
  inputs: Readonly<Record<string, string>>;
  /** When the pins of the outputs and of this record end. */
  pinnedUntil: Date;
  taskMgmtVersion: string;
}

export class NotFinishedError extends Error {
  override readonly name = 'NotFinishedError';
}

/** The record of a run that ended; throws for one that has not (no final state, or no `finishedAt`). */
export function provenanceRecord(facts: ProvenanceFacts): ProvenanceRecord {
  const { run } = facts;
  if (!isFinalState(run.state) || run.finishedAt === null) throw new NotFinishedError(`run ${run.id} has not finished (${run.state})`);
  return {
    type: PROVENANCE_TYPE,
    version: 1,
    repository: `${run.repo.owner}/${run.repo.name}`,
    number: run.number,
    sha: run.sha,
    manifestDigest: run.manifestDigest,
    task: run.task,
    taskType: run.taskType,
    // Own properties only, whatever the names: Object.fromEntries defines `__proto__` as a key too.
    params: Object.fromEntries(Object.entries(run.params)),
    requester: { login: run.requestedBy, how: run.trigger },
    approvals: run.approvals.map((approval) => ({ reviewId: approval.reviewId, reviewer: approval.reviewer, commit: approval.commit })),
    image: facts.image ? { id: facts.image.id, baseDigest: facts.image.baseDigest } : null,
    inputs: Object.fromEntries(Object.entries(facts.inputs)),
    outputs: run.outputCid === null ? null : outputsOf(run.outputCid, run.outputFiles),
    exitCode: run.exitCode,
    conclusion: conclusions[run.state],
    queuedAt: run.queuedAt.toISOString(),
    startedAt: run.startedAt?.toISOString() ?? null,
    finishedAt: run.finishedAt.toISOString(),
    pinnedUntil: facts.pinnedUntil.toISOString(),
    taskMgmtVersion: facts.taskMgmtVersion,
  };
}

/**
 * Most top-level output entries a record lists: it is one block, which Kubo and other peers take
 * up to 1 MiB; a thousand names of up to 255 bytes and their CIDs stay well below that.
 */
export const MAX_LISTED_FILES = 1000;

function outputsOf(root: string, files: readonly OutputFile[]): NonNullable<ProvenanceRecord['outputs']> {
  const listed = files.length <= MAX_LISTED_FILES ? files : [...files].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)).slice(0, MAX_LISTED_FILES);
  return {
    root,
    files: Object.fromEntries(listed.map((file) => [file.name, file.cid])),
    ...(files.length > listed.length ? { unlisted: files.length - listed.length } : {}),
  };
}

function isFinalState(state: RunState): state is FinalState {
  return Object.hasOwn(conclusions, state);
}
