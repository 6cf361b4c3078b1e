/**
 * Reads a downloaded ZIM file off the event loop: a worker thread (zim-worker.ts), started for
 * this one file and ended after it, parses the untrusted bytes and decompresses the clusters it
 * needs; the event loop hands it the path and receives the result. The worker has a small heap
 * (resourceLimits), the decompression has limits per cluster and in all (ZimLimits), and the
 * event loop stops the worker when a cluster or the whole reading runs past its deadline, also
 * when the worker never yields. Each failure is one PermanentError whose message names the limit
 * or the fault.
 */
import { Worker } from 'node:worker_threads';
import { PermanentError } from '../../../src/ports/errors.js';
import { formatBytes, ZimLimitError, type ZimLimits } from './cluster-stream.js';
import type { ZimInspection, ZimJob, ZimWorkerMessage } from './zim-worker.js';

const MiB = 1024 * 1024;

export const DEFAULT_ZIM_LIMITS: ZimLimits = {
  // libzim's clusters hold about 2 MiB; the metadata is a few hundred bytes of one of them.
  maxClusterBytes: 64 * MiB,
  maxTotalBytes: 256 * MiB,
  clusterDeadlineMs: 10_000,
  // libzim writes 8 MiB; fzstd allocates the whole window up front.
  maxZstdWindowBytes: 32 * MiB,
};

/** Time the whole reading may take. */
export const DEFAULT_ZIM_DEADLINE_MS = 60_000;

/**
 * The worker's JavaScript heap. Decompressed clusters live outside it (Buffers), bounded by
 * ZimLimits instead; this bounds what parsing itself may build.
 */
const WORKER_HEAP_MB = 96;
const RESOURCE_LIMITS = { maxOldGenerationSizeMb: WORKER_HEAP_MB, maxYoungGenerationSizeMb: 16, stackSizeMb: 4 };
/** The watchdog's margin over the worker's own check of a cluster's deadline. */
const WATCHDOG_GRACE_MS = 1_000;

// From dist/ this module is compiled JavaScript beside the compiled worker; under the TypeScript
// sources (tests) the worker is TypeScript too, loaded through tsx.
const fromSource = import.meta.url.endsWith('.ts');
const workerUrl = new URL(`./zim-worker.${fromSource ? 'ts' : 'js'}`, import.meta.url);

export interface InspectZimOptions {
  signal: AbortSignal;
  log: (line: string) => void;
  limits?: Partial<ZimLimits>;
  deadlineMs?: number;
}

export function inspectZim(path: string, options: InspectZimOptions): Promise<ZimInspection> {
  options.signal.throwIfAborted();
  const limits: ZimLimits = { ...DEFAULT_ZIM_LIMITS, ...options.limits };
  const deadlineMs = options.deadlineMs ?? DEFAULT_ZIM_DEADLINE_MS;
  const job: ZimJob = { path, limits };
  const worker = fromSource
    ? new Worker(
        `import('tsx/esm/api').then((tsx) => tsx.register()).then(() => import(${JSON.stringify(workerUrl.href)}))`,
        { eval: true, workerData: job, resourceLimits: RESOURCE_LIMITS },
      )
    : new Worker(workerUrl, { workerData: job, resourceLimits: RESOURCE_LIMITS });

  return new Promise<ZimInspection>((resolve, reject) => {
    let settled = false;
    let clusterTimer: NodeJS.Timeout | undefined;
    const finish = (settle: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(jobTimer);
      clearTimeout(clusterTimer);
      options.signal.removeEventListener('abort', onAbort);
      worker.removeAllListeners('message');
      void worker.terminate();
      settle();
    };
    const fail = (error: Error) => finish(() => reject(error));
    const onAbort = () => fail(options.signal.reason instanceof Error ? options.signal.reason : new Error('cancelled'));
    options.signal.addEventListener('abort', onAbort, { once: true });
    const jobTimer = setTimeout(() => fail(new ZimLimitError(`reading the ZIM file took more than ${deadlineMs / 1000} s, the limit`)), deadlineMs);

    worker.on('message', (message: ZimWorkerMessage) => {
      switch (message.type) {
        case 'cluster':
          clearTimeout(clusterTimer);
          if (message.phase === 'start') {
            clusterTimer = setTimeout(
              () => fail(new ZimLimitError(`ZIM cluster ${message.cluster} took more than ${limits.clusterDeadlineMs / 1000} s to decompress, the limit per cluster`)),
              limits.clusterDeadlineMs + WATCHDOG_GRACE_MS,
            );
          }
          return;
        case 'log':
          options.log(message.line);
          return;
        case 'done':
          finish(() => resolve(message.result));
          return;
        case 'failed':
          fail(new PermanentError(message.known ? message.message : `could not read the ZIM file: ${message.message}`));
          return;
      }
    });
    worker.on('error', (error: Error & { code?: string }) => {
      const why =
        error.code === 'ERR_WORKER_OUT_OF_MEMORY'
          ? `it needed more than the reader's ${formatBytes(WORKER_HEAP_MB * MiB)} heap, the limit`
          : error.message;
      fail(new PermanentError(`could not read the ZIM file: ${why}`));
    });
    worker.on('exit', (code) => fail(new PermanentError(`could not read the ZIM file: its reader stopped (exit code ${code})`)));
  });
}
