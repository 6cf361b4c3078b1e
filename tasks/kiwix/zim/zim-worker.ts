/**
 * The worker thread that reads a downloaded ZIM file (inspect-zim.ts starts one per file): the
 * header, the MIME list, the directory entries and the clusters the metadata lies in, within
 * the limits it is given. It answers with the result or one line saying what was wrong, and
 * tells the event loop each time a cluster starts and stops decompressing, so that a cluster
 * that takes too long can be stopped from outside even if it never yields.
 */
import { open } from 'node:fs/promises';
import { parentPort, workerData } from 'node:worker_threads';
import { PermanentError, errorMessage } from '../../../src/ports/errors.js';
import type { DecodeBudget, ZimLimits } from './cluster-stream.js';
import { type ZimMetadata, readZimMetadata } from './zim-metadata.js';
import { type ZimHeader, ZimReader } from './zim-reader.js';

export interface ZimJob {
  path: string;
  limits: ZimLimits;
}

export interface ZimInspection {
  header: ZimHeader;
  mimeTypes: string[];
  metadata: ZimMetadata;
}

export type ZimWorkerMessage =
  | { type: 'cluster'; cluster: number; phase: 'start' | 'stop' }
  | { type: 'log'; line: string }
  | { type: 'done'; result: ZimInspection }
  /** `known`: a PermanentError of the reader (a broken file, a limit), whose message stands alone. */
  | { type: 'failed'; message: string; known: boolean };

async function inspect(job: ZimJob, send: (message: ZimWorkerMessage) => void): Promise<ZimInspection> {
  const budget: DecodeBudget = {
    limits: job.limits,
    used: 0,
    onCluster: (cluster, phase) => send({ type: 'cluster', cluster, phase }),
  };
  const file = await open(job.path, 'r');
  try {
    const reader = await ZimReader.open(file, budget);
    try {
      const metadata = await readZimMetadata(reader, (line) => send({ type: 'log', line }));
      return { header: reader.header, mimeTypes: reader.mimeTypes, metadata };
    } finally {
      await reader.close();
    }
  } finally {
    await file.close();
  }
}

const port = parentPort;
if (port) {
  const send = (message: ZimWorkerMessage) => port.postMessage(message);
  inspect(workerData as ZimJob, send).then(
    (result) => send({ type: 'done', result }),
    (error: unknown) => send({ type: 'failed', message: errorMessage(error), known: error instanceof PermanentError }),
  );
}
