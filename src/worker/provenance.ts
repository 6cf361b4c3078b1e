/**
 * Writing a run's provenance record (src/core/runs/provenance.ts) as its end is recorded: one
 * DAG-JSON block in the store its outputs went to, pinned like them under the pin kind
 * `provenance`, until the same time. The record is written just before the run's final state, so
 * the move that ends the run carries its CID and every reader (the API, the check run, the run
 * events) sees both at once.
 */
import { provenanceRecord, type ProvenanceFacts } from '../core/runs/provenance.js';
import type { Run } from '../core/runs/run.js';
import type { IpfsBlockWriter } from '../ports/ipfs-store.js';
import type { Pins, RunRecords } from '../ports/run-store.js';
import { taskMgmtVersion } from '../version.js';

export interface ProvenanceWriterDeps {
  store: Pick<RunRecords, 'getRun'> & Pick<Pins, 'startPin' | 'indexPinBlocks' | 'completePin'>;
  now: () => Date;
}

/** Writes the record of `run`, which must be as it ends (a final state and `finishedAt`), and returns its CID. */
export async function writeProvenance(
  deps: ProvenanceWriterDeps,
  ipfs: IpfsBlockWriter,
  what: Pick<ProvenanceFacts, 'run' | 'image' | 'pinnedUntil'> & { signal?: AbortSignal },
): Promise<string> {
  const { run, pinnedUntil } = what;
  const record = provenanceRecord({ run, image: what.image, pinnedUntil, inputs: await inputsOf(deps, run), taskMgmtVersion: taskMgmtVersion() });
  await deps.store.startPin({ runId: run.id, kind: 'provenance', pinnedUntil }, deps.now());
  const cid = await ipfs.putDagJson(record, {
    ...(what.signal ? { signal: what.signal } : {}),
    onBlocks: (cids) => deps.store.indexPinBlocks({ runId: run.id, kind: 'provenance' }, cids),
  });
  await deps.store.completePin({ runId: run.id, kind: 'provenance', root: cid }, deps.now());
  return cid;
}

/** The root CID of each needed task's outputs, by task name, as the run store has them. */
async function inputsOf(deps: ProvenanceWriterDeps, run: Run): Promise<Record<string, string>> {
  const inputs: [string, string][] = [];
  for (const id of run.needs) {
    const needed = await deps.store.getRun(id);
    if (needed?.outputCid) inputs.push([needed.task, needed.outputCid]);
  }
  return Object.fromEntries(inputs);
}
