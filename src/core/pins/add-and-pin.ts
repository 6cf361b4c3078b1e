/**
 * Adding something to IPFS under a pin that expires: the pin is opened before the add, every
 * block the add stores is indexed under it as the add reports it (in batches: a 20 GiB output is
 * some 80,000 blocks, none of them held in memory here), and the root is named at the end. A
 * collection while the add runs therefore keeps its blocks, and an add that dies half-way leaves
 * a pin that expires and is collected like any other.
 */
import type { AddResult, IpfsStore } from '../../ports/ipfs-store.js';
import type { Pin, PinKind, Pins } from '../../ports/run-store.js';

export interface AddAndPinDeps {
  store: Pick<Pins, 'startPin' | 'indexPinBlocks' | 'completePin'>;
  ipfs: IpfsStore;
  now: () => Date;
}

export async function addAndPin(
  deps: AddAndPinDeps,
  what: { runId: string; kind: PinKind; path: string; pinnedUntil: Date; signal?: AbortSignal },
): Promise<{ added: AddResult; pin: Pin }> {
  const { runId, kind } = what;
  await deps.store.startPin({ runId, kind, pinnedUntil: what.pinnedUntil }, deps.now());
  const added = await deps.ipfs.addPath(what.path, {
    ...(what.signal ? { signal: what.signal } : {}),
    onBlocks: (cids) => deps.store.indexPinBlocks({ runId, kind }, cids),
  });
  const pin = await deps.store.completePin({ runId, kind, root: added.cid }, deps.now());
  return { added, pin };
}
