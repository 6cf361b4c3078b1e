/**
 * sha2-256 of large blocks on worker threads, so an add hashes on every core while the main
 * thread reads and writes: hashing is most of an add's CPU, and one thread doing all of it
 * made `task-mgmt add` far slower than reading and hashing the same file (bench/ipfs-add.ts).
 *
 * The block's memory is lent to the worker, not copied: its ArrayBuffer is transferred there
 * and back, and the caller goes on with the view it gets back. Shared memory would spare the
 * round trip, but each message leaves the worker an object holding the block until the worker's
 * own garbage collector runs, which with almost no garbage of its own is seldom: an add of
 * 512 MiB grew by 443 MB. Small blocks (a message costs more than hashing a few KiB) are hashed
 * on the calling thread. The digest is sha2-256's whatever thread computes it.
 */
import { createHash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';

/** Below this, hashing here is cheaper than a round trip to a worker. */
const WORKER_MIN_BYTES = 64 * 1024;
/** Hashing threads at most: one per core, as far as adds can keep them busy. */
const MAX_WORKERS = 4;

// Plain CommonJS with only Node's own modules: it loads the same from dist/ and from the
// TypeScript sources, and in a few milliseconds.
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
parentPort.on('message', ({ id, buffer, offset, length }) => {
  const digest = createHash('sha256').update(new Uint8Array(buffer, offset, length)).digest();
  parentPort.postMessage({ id, digest, buffer }, [buffer]);
});
`;

export interface Hashed {
  digest: Uint8Array;
  /** The block's bytes: the view to use from now on, since the one given was lent away. */
  block: Uint8Array;
}

interface Job {
  offset: number;
  length: number;
  resolve: (hashed: Hashed) => void;
  reject: (error: Error) => void;
}

interface Slot {
  worker: Worker;
  jobs: Map<number, Job>;
}

const slots: Slot[] = [];
let nextId = 0;
let workerCount: number | undefined;

/**
 * sha2-256 of `block`, on a worker thread when that pays. With `lend`, the caller says nothing
 * else will read or write the block's ArrayBuffer (all of it, not only the block's bytes) until
 * this resolves, and it uses only the returned view afterwards: every other view of that memory
 * is empty from now on. Without `lend` the block is hashed here.
 */
export function sha256Digest(block: Uint8Array, lend = false): Promise<Hashed> {
  const buffer = block.buffer;
  if (!lend || block.byteLength < WORKER_MIN_BYTES || !(buffer instanceof ArrayBuffer) || maxWorkers() < 2) {
    return Promise.resolve({ digest: hashHere(block), block });
  }
  const slot = leastBusy();
  return new Promise((resolve, reject) => {
    const id = nextId++;
    slot.jobs.set(id, { offset: block.byteOffset, length: block.byteLength, resolve, reject });
    if (slot.jobs.size === 1) slot.worker.ref();
    slot.worker.postMessage({ id, buffer, offset: block.byteOffset, length: block.byteLength }, [buffer]);
  });
}

/**
 * Starts the hashing threads now, so that they load while the caller does something else (a
 * command loading the importer's modules) rather than when the first block waits for them.
 * Idle, they do not keep the process alive.
 */
export function startHashing(): void {
  while (maxWorkers() >= 2 && slots.length < maxWorkers()) spawn();
}

function hashHere(bytes: Uint8Array): Uint8Array {
  return createHash('sha256').update(bytes).digest();
}

/** With one core a worker only adds a hop: hash on the caller's thread. */
function maxWorkers(): number {
  workerCount ??= Math.min(MAX_WORKERS, availableParallelism());
  return workerCount;
}

function leastBusy(): Slot {
  const idle = slots.find((slot) => slot.jobs.size === 0);
  if (idle) return idle;
  if (slots.length < maxWorkers()) return spawn();
  return slots.reduce((best, slot) => (slot.jobs.size < best.jobs.size ? slot : best));
}

function spawn(): Slot {
  // None of the parent's flags: a loader or `--input-type=module` would make the script above
  // something else than CommonJS, and loading tsx (in tests) only slows each thread's start.
  const worker = new Worker(WORKER_SOURCE, { eval: true, execArgv: [] });
  const slot: Slot = { worker, jobs: new Map() };
  worker.on('message', ({ id, digest, buffer }: { id: number; digest: Uint8Array; buffer: ArrayBuffer }) => {
    const job = slot.jobs.get(id);
    if (job === undefined) return;
    slot.jobs.delete(id);
    if (slot.jobs.size === 0) worker.unref();
    job.resolve({ digest, block: new Uint8Array(buffer, job.offset, job.length) });
  });
  // A worker that dies (out of memory, terminated) takes the memory lent to it along: the add
  // fails rather than hash bytes that are gone.
  const lost = (why: string) => {
    const index = slots.indexOf(slot);
    if (index !== -1) slots.splice(index, 1);
    for (const job of slot.jobs.values()) job.reject(new Error(`a hashing thread stopped (${why})`));
    slot.jobs.clear();
  };
  worker.on('error', (error) => lost(error.message));
  worker.on('exit', (code) => lost(`exit code ${code}`));
  // An idle worker must not keep the process alive: it is referenced only while it has jobs.
  // After the listeners: adding a 'message' listener references the worker again.
  worker.unref();
  slots.push(slot);
  return slot;
}
