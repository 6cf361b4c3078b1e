/**
 * Writes a UnixFS folder from a block store to disk, as `ipfs get` would: folders, files, and
 * symlinks as links (never followed). The DAG is walked from its root, so a block it lacks is
 * found here, and the walk stops at the caps on files and bytes. Names come from the DAG, so each
 * must be one plain path segment; every entry is created exclusively, so no entry can replace or
 * write through another (a name given twice fails).
 */
import { setMaxListeners } from 'node:events';
import { mkdir, open, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { exporter, type ReadableStorage, type UnixFSEntry } from 'ipfs-unixfs-exporter';
import type { CID } from 'multiformats/cid';
import { DagFetchError, type FetchLimits } from '../../ports/output-fetcher.js';

/** Most bytes of a name in a folder, as most file systems allow. */
const MAX_NAME_BYTES = 255;

/**
 * Bytes of a file asked of the exporter at a time. It reads a file's blocks as fast as it can
 * into a queue the reader drains at its own pace, so a whole file could sit in memory while
 * the disk catches up (+271 MiB writing a 256 MiB file); asked a window at a time, at most one
 * window and the blocks read for it are held.
 */
const FILE_WINDOW_BYTES = 8 * 1024 * 1024;

export async function writeUnixfsFolder(root: CID, blocks: ReadableStorage, dir: string, limits: FetchLimits, outer: AbortSignal): Promise<{ files: number; bytes: number }> {
  // Each block read in parallel listens to the signal for a moment: more than Node's default 10 at once.
  const signal = AbortSignal.any([outer]);
  setMaxListeners(64, signal);
  const top = await exporter(root, blocks, { signal });
  if (top.type !== 'directory') throw new DagFetchError(`${root.toString()} is not a folder`);
  await mkdir(dir);
  const total = { files: 0, bytes: 0 };
  // Folders still to write, depth first; iterators are never nested, so memory holds one listing page at a time.
  const pending: Array<{ cid: CID; path: string }> = [{ cid: top.cid, path: dir }];
  while (pending.length > 0) {
    const folder = pending.pop()!;
    const node = folder.cid.equals(top.cid) ? top : await exporter(folder.cid, blocks, { signal });
    if (node.type !== 'directory') throw new DagFetchError(`${folder.cid.toString()} is not a folder`);
    for await (const child of node.entries({ signal })) {
      checkName(child.name, folder.cid);
      total.files += 1;
      if (total.files > limits.maxFiles) {
        throw new DagFetchError(`the outputs hold more than OUTPUT_MAX_FILES (${limits.maxFiles.toLocaleString('en-US')}) files and folders`);
      }
      const path = join(folder.path, child.name);
      const entry = await exporter(child.cid, blocks, { signal });
      if (entry.type === 'directory') {
        await mkdir(path);
        pending.push({ cid: entry.cid, path });
      } else if (entry.type === 'file' && entry.unixfs.type === 'symlink') {
        await symlink(Buffer.from(entry.unixfs.data ?? new Uint8Array()).toString('utf8'), path);
      } else if (entry.type === 'file' || entry.type === 'raw' || entry.type === 'identity') {
        await writeFile(path, windows(entry, signal), (bytes) => {
          total.bytes += bytes;
          if (total.bytes > limits.maxBytes) throw new DagFetchError(`the outputs are larger than OUTPUT_MAX_BYTES (${limits.maxBytes.toLocaleString('en-US')} bytes)`);
        });
      } else {
        throw new DagFetchError(`${child.cid.toString()} (${child.name}) is not a UnixFS file or folder`);
      }
    }
  }
  return total;
}

/** One plain segment: no separator, not `.` or `..`, no NUL, not empty, not too long. */
function checkName(name: string, folder: CID): void {
  if (name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\0') || Buffer.byteLength(name) > MAX_NAME_BYTES) {
    throw new DagFetchError(`folder ${folder.toString()} names an entry ${JSON.stringify(name.slice(0, 80))} which is not a file name`);
  }
}

/** A file's bytes, asked of the exporter a window at a time (see FILE_WINDOW_BYTES). */
async function* windows(entry: Extract<UnixFSEntry, { content: unknown; type: 'file' | 'raw' | 'identity' }>, signal: AbortSignal): AsyncGenerator<Uint8Array> {
  const size = Number(entry.size);
  for (let offset = 0; offset < size; offset += FILE_WINDOW_BYTES) {
    yield* entry.content({ offset, length: Math.min(FILE_WINDOW_BYTES, size - offset), signal, blockReadConcurrency: 8 });
  }
}

async function writeFile(path: string, content: AsyncIterable<Uint8Array>, count: (bytes: number) => void): Promise<void> {
  // 'wx': created here or failing, never through a link or over an entry already written.
  const handle = await open(path, 'wx');
  try {
    for await (const chunk of content) {
      count(chunk.byteLength);
      for (let at = 0; at < chunk.byteLength; ) at += (await handle.write(chunk, at)).bytesWritten;
    }
  } finally {
    await handle.close();
  }
}
