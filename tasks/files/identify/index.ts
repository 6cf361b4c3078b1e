/**
 * files/identify: the type of every file in the outputs of needed tasks, by content (file-type's
 * magic numbers, then a few cheap sniffers), never by name. Results stream out as they come, so a
 * million files cost as much memory as ten: filetypes.json (a JSON array), filetypes.csv and
 * summary.json (counts by MIME type).
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { opendir, realpath, type FileHandle } from 'node:fs/promises';
import { join, relative, resolve, sep } from 'node:path';
import { fileTypeFromBuffer, fileTypeFromStream } from 'file-type';
import { z } from 'zod';
import { PermanentError } from '../../../src/ports/errors.js';
import type { TaskContext, TaskResult, TaskType } from '../../../src/ports/task-type.js';
import { NotRegularFileError, openRegularFile } from '../../../src/ports/untrusted-file.js';

const paramsSchema = z.object({
  /** Name of a needed task whose outputs to identify; default every needed task. */
  input: z.string().min(1).max(63).optional(),
  /** Sub-folder of the input(s) to identify, relative to their root. */
  path: z
    .string()
    .min(1)
    .max(1024)
    .refine((p) => !p.startsWith('/') && !p.split(/[\\/]/).includes('..'), 'a relative path inside the input')
    .optional(),
});

export type Params = z.output<typeof paramsSchema>;

export interface Identified {
  input: string;
  /** Path relative to the input's root, with `/` separators. */
  path: string;
  size: number;
  mime: string;
  ext: string;
  by: 'content' | 'fallback';
}

const CONCURRENCY = 8;
/** Bytes the fallback sniffers look at. */
const SNIFF_BYTES = 64 * 1024;
const PROGRESS_EVERY_MS = 250;

export const filesIdentify: TaskType<Params> = {
  name: 'files/identify',
  description: 'Identify the type of every file by its content; write a JSON and a CSV report',
  params: paramsSchema,
  network: false,
  async run(ctx, params): Promise<TaskResult> {
    try {
      return { metadata: await identifyAll(ctx, params) };
    } catch (error) {
      if (error instanceof PermanentError) return { state: 'failed', error: error.message };
      throw error;
    }
  },
};

async function identifyAll(ctx: TaskContext, params: Params): Promise<Record<string, unknown>> {
  const roots = await chooseRoots(ctx, params);

  // Counting first costs one cheap walk and gives the check run a real "n of total".
  let total = 0;
  for (const root of roots) for await (const _ of walk(root.dir)) total++;
  ctx.log(`files/identify: ${total} files in ${roots.map((r) => r.label).join(', ')}`);

  const json = await openOutput(join(ctx.outDir, 'filetypes.json'));
  const csv = await openOutput(join(ctx.outDir, 'filetypes.csv'));
  const byMime = new Map<string, number>();
  const byMethod = { content: 0, fallback: 0 };
  let done = 0;
  let bytes = 0;
  let lastProgress = 0;

  await write(json, '[');
  await write(csv, 'input,path,size,mime,ext,by\r\n');
  const emit = async (item: Identified) => {
    await write(json, `${done === 0 ? '\n' : ',\n'}${JSON.stringify(item)}`);
    await write(csv, `${[item.input, item.path, String(item.size), item.mime, item.ext, item.by].map(csvField).join(',')}\r\n`);
    byMime.set(item.mime, (byMime.get(item.mime) ?? 0) + 1);
    byMethod[item.by]++;
    bytes += item.size;
    done++;
    if (Date.now() - lastProgress >= PROGRESS_EVERY_MS) {
      lastProgress = Date.now();
      ctx.progress({ done, total: Math.max(total, done) });
    }
  };

  // A window of at most CONCURRENCY files in flight, written in walk order so the same
  // folder gives the same report (and the same CID).
  const inFlight: Promise<Identified>[] = [];
  try {
    for (const root of roots) {
      for await (const file of walk(root.dir)) {
        ctx.signal.throwIfAborted();
        const pending = identify(root.input, relative(root.base, file).split(sep).join('/'), file);
        // Handled when its turn comes; this only keeps an early failure from counting as unhandled.
        pending.catch(() => {});
        inFlight.push(pending);
        if (inFlight.length >= CONCURRENCY) await emit(await inFlight.shift()!);
      }
    }
    while (inFlight.length > 0) await emit(await inFlight.shift()!);
  } finally {
    // Settle what is still running so no read outlives the task.
    await Promise.allSettled(inFlight);
  }

  await write(json, done === 0 ? ']\n' : '\n]\n');
  await close(json);
  await close(csv);
  ctx.progress({ done, total: done });

  const summary = {
    files: done,
    bytes,
    byMime: Object.fromEntries([...byMime].sort(([a, x], [b, y]) => y - x || (a < b ? -1 : 1))),
    byMethod,
  };
  const summaryFile = await openOutput(join(ctx.outDir, 'summary.json'));
  await write(summaryFile, `${JSON.stringify(summary, null, 2)}\n`);
  await close(summaryFile);
  ctx.log(`files/identify: ${done} files, ${byMime.size} types`);
  return summary;
}

interface Root {
  input: string;
  /** Folder paths are reported relative to (the input's root). */
  base: string;
  /** Folder walked (the root, or its sub-folder `path`). */
  dir: string;
  label: string;
}

async function chooseRoots(ctx: TaskContext, params: Params): Promise<Root[]> {
  const names = Object.keys(ctx.inputs).sort();
  if (params.input !== undefined && !names.includes(params.input)) {
    throw new PermanentError(
      `input "${params.input}" is not a task this one needs (needs: ${names.length ? names.join(', ') : 'nothing'})`,
    );
  }
  const chosen = params.input !== undefined ? [params.input] : names;
  if (chosen.length === 0) throw new PermanentError('files/identify needs a task whose outputs it identifies (needs: [...])');
  const roots: Root[] = [];
  for (const input of chosen) {
    const base = ctx.inputs[input]!.dir;
    const dir = params.path === undefined ? base : resolve(base, params.path);
    let real: string;
    try {
      real = await realpath(dir);
    } catch {
      throw new PermanentError(`${input} has no folder ${params.path ?? '.'}`);
    }
    // A symlinked sub-folder must not lead out of the input.
    const realBase = await realpath(base);
    if (real !== realBase && !real.startsWith(realBase + sep)) {
      throw new PermanentError(`${params.path} leads outside the outputs of ${input}`);
    }
    roots.push({ input, base, dir, label: params.path === undefined ? input : `${input}/${params.path}` });
  }
  return roots;
}

/**
 * Regular files under `dir`, depth first, one open directory handle per level and no listing
 * held in memory. Symlinks are not followed (they may point outside the input).
 */
async function* walk(dir: string): AsyncGenerator<string> {
  const handle = await opendir(dir);
  for await (const entry of handle) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* walk(path);
    else if (entry.isFile()) yield path;
  }
}

/**
 * Another task wrote these files: each is opened as a regular file only, never through a symlink
 * and never waiting on a FIFO (README "Security model"), and read through that one handle.
 */
async function identify(input: string, path: string, file: string): Promise<Identified> {
  let opened: Awaited<ReturnType<typeof openRegularFile>>;
  try {
    opened = await openRegularFile(file);
  } catch (error) {
    if (error instanceof NotRegularFileError) throw new PermanentError(`${input}/${path} changed while it was identified: ${error.message}`);
    throw error;
  }
  const { handle, stats } = opened;
  const size = stats.size;
  try {
    const buffer = Buffer.alloc(Math.min(size, SNIFF_BYTES));
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
    const head = buffer.subarray(0, bytesRead);
    // Short files are settled by the head alone; file-type reads on only when it may need more
    // than the head (zip containers list their members further in).
    const type = size === 0 ? undefined : head.length === size ? await fileTypeFromBuffer(head) : await typeFromHandle(handle);
    if (type) return { input, path, size, mime: type.mime, ext: type.ext, by: 'content' };
    return { input, path, size, ...sniff(head, size), by: 'fallback' };
  } finally {
    await handle.close();
  }
}

async function typeFromHandle(handle: FileHandle): Promise<Awaited<ReturnType<typeof fileTypeFromStream>>> {
  const stream = handle.createReadStream({ start: 0, autoClose: false });
  try {
    return await fileTypeFromStream(stream);
  } finally {
    stream.destroy();
  }
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** Cheap guesses for what has no magic number: empty, JSON, plain text, or unknown bytes. */
export function sniff(head: Buffer, size: number): { mime: string; ext: string } {
  if (size === 0) return { mime: 'inode/x-empty', ext: '' };
  if (head.includes(0)) return { mime: 'application/octet-stream', ext: 'bin' };
  const whole = head.length === size;
  // A cut in the middle of a multi-byte character at the end of the head is not an error.
  let text: string | undefined;
  for (let trim = 0; trim <= (whole ? 0 : 3) && text === undefined; trim++) {
    try {
      text = strictUtf8.decode(head.subarray(0, head.length - trim));
    } catch {
      text = undefined;
    }
  }
  if (text === undefined) return { mime: 'application/octet-stream', ext: 'bin' };
  if (whole && /^\s*[[{]/.test(text)) {
    try {
      JSON.parse(text);
      return { mime: 'application/json', ext: 'json' };
    } catch {
      // Not JSON after all: plain text.
    }
  }
  return { mime: 'text/plain', ext: 'txt' };
}

/** RFC 4180: quote a field holding a comma, a quote or a line break; double inner quotes. */
export function csvField(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

async function openOutput(path: string): Promise<WriteStream> {
  const stream = createWriteStream(path);
  await new Promise<void>((resolve, reject) => {
    stream.once('open', () => resolve());
    stream.once('error', reject);
  });
  return stream;
}

/** Writes with back-pressure: waits for 'drain' when the stream's buffer is full. */
function write(stream: WriteStream, text: string): Promise<void> | void {
  if (!stream.write(text)) {
    return new Promise((resolve, reject) => {
      const onError = (error: Error) => reject(error);
      stream.once('error', onError);
      stream.once('drain', () => {
        stream.off('error', onError);
        resolve();
      });
    });
  }
}

function close(stream: WriteStream): Promise<void> {
  return new Promise((resolve, reject) => stream.end((error?: Error | null) => (error ? reject(error) : resolve())));
}
