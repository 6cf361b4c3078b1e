/**
 * Who may fetch what from the app's gateway (README "Fetching outputs"): a DAG is served only
 * while a live pin holds its root block (the run store's pin index lists every block below each
 * pinned root), and only to a caller who may read one of the runs whose pins hold it. Reads
 * follow GitHub, as for run records: outputs of a public repository go to anyone, without a token
 * too; those of a private or internal one only to a token that may read the repository (the run
 * service decides), service tokens always.
 *
 * A repository's visibility is asked of GitHub once a minute at most (per repository), so a
 * public page of many outputs costs no more GitHub requests than one; a repository made private
 * stops being served publicly within that minute.
 */
import type { CID } from 'multiformats/cid';
import * as dagPb from '@ipld/dag-pb';
import { sha256 } from 'multiformats/hashes/sha2';
import type { RepoRef } from '../../core/runs/run.js';
import { RetryableError } from '../../ports/errors.js';
import type { RepoVisibility } from '../../ports/repo-host.js';
import type { Pins } from '../../ports/run-store.js';
import type { ApiActor } from './http-io.js';
import type { ContentAccess, GatewayAccess } from './ipfs-gateway.js';
import { requesterOf, type RunReads } from './run-operations.js';

export interface PinnedAccessDeps {
  pins: Pick<Pins, 'livePinsHolding'>;
  /** Which repositories' runs a caller may read: the run service. */
  reads: Pick<RunReads, 'canRead'>;
  /** The repository's visibility, as the App sees it on GitHub. */
  visibility: (repo: RepoRef) => Promise<RepoVisibility>;
  now: () => Date;
  /** How long a visibility is kept (default a minute). */
  keepMs?: number;
  /** How many visibilities are kept at most; the oldest go first (default 10,000). */
  maxEntries?: number;
}

/** Most pins looked at for one block: enough to find a readable run among those sharing it. */
const holdersLooked = 100;

export function pinnedAccess(deps: PinnedAccessDeps): GatewayAccess {
  const keepMs = deps.keepMs ?? 60_000;
  const maxEntries = deps.maxEntries ?? 10_000;
  const known = new Map<string, { isPublic: Promise<boolean>; until: number }>();

  /** Whether anyone may read the repository; GitHub failing past its retries is thrown, any other failure means no. */
  function isPublic(repo: RepoRef): Promise<boolean> {
    const key = `${repo.owner}/${repo.name}`.toLowerCase();
    const now = deps.now().getTime();
    const kept = known.get(key);
    if (kept && kept.until > now) return kept.isPublic;
    const answer = deps.visibility(repo).then(
      (visibility) => visibility === 'public',
      (error: unknown) => {
        if (error instanceof RetryableError) throw error;
        return false;
      },
    );
    known.delete(key);
    known.set(key, { isPublic: answer, until: now + keepMs });
    answer.catch(() => known.delete(key));
    while (known.size > maxEntries) known.delete(known.keys().next().value!);
    return answer;
  }

  return async (cid: CID, actor: ApiActor | null): Promise<ContentAccess> => {
    const now = deps.now();
    const repos = new Map<string, RepoRef>();
    for (const form of indexedForms(cid)) {
      for (const holder of await deps.pins.livePinsHolding(form, now, holdersLooked)) repos.set(`${holder.repo.owner}/${holder.repo.name}`.toLowerCase(), holder.repo);
    }
    if (repos.size === 0) return 'not-found';
    for (const repo of repos.values()) if (await isPublic(repo)) return 'public';
    if (actor === null) return 'not-found';
    const requester = requesterOf(actor);
    for (const repo of repos.values()) if (await deps.reads.canRead(requester, repo)) return 'restricted';
    return 'not-found';
  };
}

/**
 * The strings the pin index may know `cid` by: adds report CIDs as they made them (CIDv0 for
 * dag-pb nodes of the default profile), while a client may ask for the same node as CIDv1.
 */
function indexedForms(cid: CID): string[] {
  const forms = [cid.toString()];
  if (cid.code === dagPb.code && cid.multihash.code === sha256.code) {
    forms.push((cid.version === 0 ? cid.toV1() : cid.toV0()).toString());
  }
  return forms;
}
