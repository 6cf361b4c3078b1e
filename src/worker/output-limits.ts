/**
 * Caps on what a task may leave in its output folder (`OUTPUT_MAX_BYTES`, `OUTPUT_MAX_FILES`):
 * checked every few seconds while the task runs, so a full disk is stopped early, and once more
 * before the outputs are added to IPFS. Sizes are apparent sizes: a sparse 1 TiB file takes
 * little disk but would be read, hashed and stored as 1 TiB.
 */
import type { Dirent } from 'node:fs';
import { lstat, opendir } from 'node:fs/promises';
import { join } from 'node:path';
import { formatSize } from '../core/runs/units.js';

export interface OutputLimits {
  /** Most bytes of all files together, by apparent size. */
  maxBytes: number;
  /** What sets `maxBytes`, as a refusal names it (default `OUTPUT_MAX_BYTES`). */
  bytesRule?: string;
  /** Most entries (files, folders, links) below the output folder. */
  maxFiles: number;
}

export const DEFAULT_OUTPUT_LIMITS: OutputLimits = { maxBytes: 20 * 1024 ** 3, maxFiles: 1_000_000 };

/** The outputs went past a cap; the message names the cap and the figure. */
export class OutputLimitError extends Error {
  override readonly name = 'OutputLimitError';
}

/** lstat calls in flight during a walk: enough to keep the pool busy, few enough to leave it room. */
const LSTATS_IN_FLIGHT = 16;

/**
 * Walks `dir` (symlinks not followed) and throws OutputLimitError as soon as the outputs pass a
 * cap, so one walk costs at most about `maxFiles` entries however much a task wrote.
 */
export async function checkOutputLimits(dir: string, limits: OutputLimits, signal?: AbortSignal): Promise<{ bytes: number; files: number }> {
  const total = { bytes: 0, files: 0 };
  const count = (entries: number, bytes: number) => {
    total.files += entries;
    total.bytes += bytes;
    if (total.files > limits.maxFiles) {
      throw new OutputLimitError(`the outputs hold more than OUTPUT_MAX_FILES (${limits.maxFiles.toLocaleString('en-US')}) files and folders: at least ${total.files.toLocaleString('en-US')} found`);
    }
    if (total.bytes > limits.maxBytes) {
      throw new OutputLimitError(`the outputs are larger than ${limits.bytesRule ?? 'OUTPUT_MAX_BYTES'} (${formatSize(limits.maxBytes)}): at least ${formatSize(total.bytes)} (${total.bytes} bytes; a sparse file counts at its full size) found`);
    }
  };
  await walk(dir, count, signal);
  return total;
}

async function walk(folder: string, count: (entries: number, bytes: number) => void, signal: AbortSignal | undefined): Promise<void> {
  signal?.throwIfAborted();
  const handle = await opendir(folder, { bufferSize: 256 }).catch(ignoreVanished);
  if (handle === null) return;
  const folders: string[] = [];
  let batch: Dirent[] = [];
  const flush = async () => {
    const sizes = await Promise.all(batch.map((entry) => sizeOf(join(folder, entry.name), entry, folders)));
    count(batch.length, sizes.reduce((sum, size) => sum + size, 0));
    batch = [];
    signal?.throwIfAborted();
  };
  try {
    for await (const entry of handle) {
      batch.push(entry);
      if (batch.length >= LSTATS_IN_FLIGHT) await flush();
    }
    await flush();
  } finally {
    // for await closes the handle when it ends or breaks; closing twice throws, hence the catch.
    await handle.close().catch(() => undefined);
  }
  for (const child of folders) await walk(child, count, signal);
}

/** Apparent size of a regular file; folders are noted for the walk, everything else counts 0 bytes. */
async function sizeOf(path: string, entry: Dirent, folders: string[]): Promise<number> {
  if (entry.isDirectory()) {
    folders.push(path);
    return 0;
  }
  if (entry.isSymbolicLink() || entry.isFIFO() || entry.isSocket() || entry.isBlockDevice() || entry.isCharacterDevice()) return 0;
  // A regular file, or a file system that does not tell the type in its listing.
  const stats = await lstat(path).catch(ignoreVanished);
  if (stats === null) return 0;
  if (stats.isDirectory()) folders.push(path);
  return stats.isFile() ? stats.size : 0;
}

/** The task may delete while the walk runs: what is gone counts nothing. */
function ignoreVanished(error: unknown): null {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOENT' || code === 'ENOTDIR') return null;
  throw error;
}
