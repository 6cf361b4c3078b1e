/**
 * Opening a file that a task left (its `/out`, or `/in/<task>` of a task it needs): whoever wrote
 * the task may have made it a FIFO, a device node or a symlink. A plain `open` of a FIFO waits for
 * a writer that never comes and holds one of libuv's four pool threads for good; four such opens
 * freeze every file and DNS call of the process (README "Security model").
 *
 * So: `lstat` first and open only a regular file, with `O_NOFOLLOW` (a symlink swapped in after the
 * `lstat` fails with ELOOP instead of being followed) and `O_NONBLOCK` (a FIFO swapped in opens
 * at once instead of waiting), then `fstat` the handle to be sure it is still that regular file.
 * It lives in ports because both the worker and task types (which import only ports) use it.
 */
import { constants, type Stats } from 'node:fs';
import { lstat, open, type FileHandle } from 'node:fs/promises';

/** Most bytes `readSmallFile` reads unless told otherwise. */
export const SMALL_FILE_MAX_BYTES = 64 * 1024;

const OPEN_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

/** The path is not a regular file (or stopped being one while it was opened); nothing was read. */
export class NotRegularFileError extends Error {
  override readonly name = 'NotRegularFileError';
  constructor(
    readonly path: string,
    readonly fileType: string,
  ) {
    super(`${path} is a ${fileType}, not a regular file, so it was not opened`);
  }
}

/**
 * Opens `path` for reading only if it is a regular file, never following a symlink and never
 * waiting on a FIFO. Throws NotRegularFileError otherwise; a missing file throws ENOENT as `open`
 * does. The caller closes the handle.
 */
export async function openRegularFile(path: string): Promise<{ handle: FileHandle; stats: Stats }> {
  const before = await lstat(path);
  if (!before.isFile()) throw new NotRegularFileError(path, describeFileType(before));
  let handle: FileHandle;
  try {
    handle = await open(path, OPEN_FLAGS);
  } catch (error) {
    // O_NOFOLLOW on a symlink: it was swapped in after the lstat.
    if ((error as NodeJS.ErrnoException).code === 'ELOOP') throw new NotRegularFileError(path, 'symbolic link');
    throw error;
  }
  try {
    const stats = await handle.stat();
    if (!stats.isFile()) throw new NotRegularFileError(path, describeFileType(stats));
    if (stats.ino !== before.ino || stats.dev !== before.dev) throw new NotRegularFileError(path, 'file replaced while it was opened');
    return { handle, stats };
  } catch (error) {
    await handle.close();
    throw error;
  }
}

/**
 * Reads at most `maxBytes` of a regular file (see `openRegularFile`). `complete` is false when the
 * file holds more than that; `bytes` then holds only its first `maxBytes`.
 */
export async function readSmallFile(path: string, maxBytes = SMALL_FILE_MAX_BYTES): Promise<{ bytes: Buffer; complete: boolean }> {
  const { handle } = await openRegularFile(path);
  try {
    // One byte more than allowed tells a file of exactly maxBytes from a longer one.
    const buffer = Buffer.alloc(maxBytes + 1);
    let filled = 0;
    while (filled < buffer.length) {
      const { bytesRead } = await handle.read(buffer, filled, buffer.length - filled, filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    return { bytes: buffer.subarray(0, Math.min(filled, maxBytes)), complete: filled <= maxBytes };
  } finally {
    await handle.close();
  }
}

/** What a non-regular file is, for messages. */
export function describeFileType(stats: Stats): string {
  if (stats.isFile()) return 'regular file';
  if (stats.isDirectory()) return 'folder';
  if (stats.isSymbolicLink()) return 'symbolic link';
  if (stats.isFIFO()) return 'FIFO (named pipe)';
  if (stats.isSocket()) return 'socket';
  if (stats.isBlockDevice()) return 'block device';
  if (stats.isCharacterDevice()) return 'character device';
  return 'special file';
}
