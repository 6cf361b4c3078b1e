/**
 * Reads `task-mgmt.yml` off the event loop (README "Security model"): the YAML → JS step runs in
 * one of two long-lived worker threads, created when first needed and holding the process open
 * only while they work. A worker that has not answered within the deadline is terminated and
 * replaced, and the manifest is refused. The deadline starts when the worker has loaded: its
 * start (seconds on a loaded machine, from TypeScript sources in tests) is no manifest's doing.
 */
import { Worker } from 'node:worker_threads';
import { manifestFile, placesLocator, type ManifestError, type ManifestLocator } from './load-manifest.js';
import type { YamlAnswer, YamlReady } from './manifest-yaml-worker.js';

/** How long reading a manifest's YAML may take. */
export const manifestReadDeadlineMs = 5_000;
/** How long a new worker may take to load before the manifest waiting for it is refused. */
const workerStartLimitMs = 60_000;
const poolSize = 2;
/** Heap of a worker: a manifest is at most 256 KiB, so this is room to spare, not a budget. */
const workerHeapMb = 256;

export type ManifestYaml = { ok: true; raw: unknown; locate: ManifestLocator } | { ok: false; errors: ManifestError[] };

interface Slot {
  worker: Worker;
  /** True once the worker has loaded; false if it was lost first. */
  ready: Promise<boolean>;
  job: { id: number; settle: (answer: ManifestYaml) => void } | null;
}

// From dist/ this module is compiled JavaScript beside the compiled worker; under the TypeScript
// sources (tests) the worker is TypeScript too, loaded through tsx.
const fromSource = import.meta.url.endsWith('.ts');
const workerUrl = new URL(`./manifest-yaml-worker.${fromSource ? 'ts' : 'js'}`, import.meta.url);
const slots: Slot[] = [];
const waiting: (() => void)[] = [];
let nextId = 0;

function refusal(message: string): ManifestYaml {
  return { ok: false, errors: [{ file: manifestFile, line: 1, column: 1, field: '', message }] };
}

function spawn(): Slot {
  const resourceLimits = { maxOldGenerationSizeMb: workerHeapMb };
  const worker = fromSource
    ? new Worker(`import('tsx/esm/api').then((tsx) => tsx.register()).then(() => import(${JSON.stringify(workerUrl.href)}))`, { eval: true, resourceLimits })
    : new Worker(workerUrl, { resourceLimits });
  worker.unref();
  let markReady: (loaded: boolean) => void = () => undefined;
  const slot: Slot = { worker, ready: new Promise<boolean>((resolve) => (markReady = resolve)), job: null };
  worker.on('message', (answer: YamlAnswer | YamlReady) => {
    if ('ready' in answer) return markReady(true);
    if (slot.job === null || slot.job.id !== answer.id) return;
    finish(slot, answer.ok ? { ok: true, raw: answer.raw, locate: placesLocator(answer.places) } : { ok: false, errors: answer.errors });
  });
  const lost = (why: string) => {
    markReady(false);
    const index = slots.indexOf(slot);
    if (index !== -1) slots.splice(index, 1);
    if (slot.job !== null) finish(slot, refusal(`could not be read (${why})`));
  };
  worker.on('error', (error) => lost(error.message));
  worker.on('exit', (code) => lost(`the reader stopped with code ${code}`));
  slots.push(slot);
  return slot;
}

function finish(slot: Slot, answer: ManifestYaml): void {
  const job = slot.job;
  slot.job = null;
  slot.worker.unref();
  job?.settle(answer);
  waiting.shift()?.();
}

async function freeSlot(): Promise<Slot> {
  for (;;) {
    const idle = slots.find((slot) => slot.job === null);
    if (idle) return idle;
    if (slots.length < poolSize) return spawn();
    await new Promise<void>((resolve) => waiting.push(resolve));
  }
}

/**
 * The YAML → JS step of parseManifest (readManifestYaml) in a worker: the same errors with the
 * same lines and columns, or the parsed value with a locator for the checks that follow.
 */
export async function readManifestYamlOffThread(text: string, deadlineMs = manifestReadDeadlineMs): Promise<ManifestYaml> {
  const slot = await freeSlot();
  const id = (nextId += 1);
  return new Promise<ManifestYaml>((resolve) => {
    const giveUp = (message: string) => () => {
      if (slot.job?.id !== id) return;
      const index = slots.indexOf(slot);
      if (index !== -1) slots.splice(index, 1);
      slot.worker.removeAllListeners('exit');
      void slot.worker.terminate();
      finish(slot, refusal(message));
    };
    let timer = setTimeout(giveUp('could not be read (the reader did not start)'), workerStartLimitMs);
    slot.job = {
      id,
      settle: (answer) => {
        clearTimeout(timer);
        resolve(answer);
      },
    };
    slot.worker.ref();
    void slot.ready.then((loaded) => {
      // A worker lost before it loaded has settled the job already.
      if (!loaded || slot.job?.id !== id) return;
      clearTimeout(timer);
      timer = setTimeout(giveUp(`took too long to read (over ${deadlineMs / 1000} s); make it smaller or simpler`), deadlineMs);
      slot.worker.postMessage({ id, text });
    });
  });
}
