/**
 * kiwix/zim: fetch a Kiwix ZIM file, verify it against the checksum Kiwix publishes beside it,
 * check that it is a ZIM file and record its metadata in zim.json. The output folder (the ZIM and
 * zim.json) is then added to IPFS like any task's.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { z } from 'zod';
import { PermanentError, RetryableError, errorMessage } from '../../../src/ports/errors.js';
import type { FetchedResponse, TaskContext, TaskResult, TaskType } from '../../../src/ports/task-type.js';
import { contentLength } from '../../shared/http-body.js';
import { type ChecksumAlgorithm, parseChecksumFile } from './checksum-file.js';
import { type Get, okGetter, readText } from './http-get.js';
import { folderUrl, newestInListing, projectOf, splitDatedName } from './resolve-name.js';
import { inspectZim } from './inspect-zim.js';
import type { ZimMetadata } from './zim-metadata.js';
import type { ZimHeader } from './zim-reader.js';

const bookName = /^[A-Za-z0-9][A-Za-z0-9.+-]*(?:_[A-Za-z0-9.+-]+)*$/;

const paramsSchema = z
  .object({
    /** A Kiwix book name (`wikipedia_en_all_nopic`), optionally with a date (`…_2024-01`). */
    name: z.string().max(200).regex(bookName, 'a Kiwix book name such as wikipedia_en_all_nopic').optional(),
    /** The ZIM file's URL; its checksum file is looked up beside it. */
    url: z.url({ protocol: /^https?$/ }).max(8192).optional(),
    /** Base URL of the Kiwix mirror a name is resolved on. */
    mirror: z.url({ protocol: /^https?$/ }).max(8192).default('https://download.kiwix.org/zim/'),
    /** Folder of the book on the mirror; default the name's first segment (`wikipedia`). */
    project: z.string().max(200).regex(/^[A-Za-z0-9._-]+$/).refine((p) => p !== '.' && p !== '..').optional(),
    /** Which published checksum to verify against. */
    checksum: z.enum(['sha256', 'md5']).default('sha256'),
  })
  .refine((p) => (p.name === undefined) !== (p.url === undefined), {
    message: 'give exactly one of name and url',
  });

export type Params = z.output<typeof paramsSchema>;

/** Largest directory listing read (Kiwix's wikipedia/ listing is a few MB). */
const MAX_LISTING_BYTES = 32 * 1024 * 1024;

export interface ZimReport {
  url: string;
  filename: string;
  sha256: string;
  md5?: string;
  bytes: number;
  checksum: { algorithm: ChecksumAlgorithm; url: string; expected: string };
  header: ZimHeader & { mimeTypes: string[] };
  metadata: ZimMetadata;
}

export const kiwixZim: TaskType<Params> = {
  name: 'kiwix/zim',
  description: "Fetch a Kiwix ZIM file, verify it against Kiwix's published checksum, and record its metadata",
  params: paramsSchema as z.ZodType<Params>,
  network: true,
  async run(ctx, params): Promise<TaskResult> {
    try {
      const report = await fetchZim(ctx, params);
      return { metadata: { ...report } };
    } catch (error) {
      if (error instanceof PermanentError) return { state: 'failed', error: error.message };
      throw error;
    }
  },
};

async function fetchZim(ctx: TaskContext, params: Params): Promise<ZimReport> {
  const get = okGetter(ctx.fetch, ctx.signal);

  const zimUrl = params.url ?? (await resolveName(ctx, params, get));
  const filename = decodeURIComponent(new URL(zimUrl).pathname.split('/').pop() ?? '');
  if (!/^[^/\\]+\.zim$/.test(filename) || filename.startsWith('.')) {
    throw new PermanentError(`${zimUrl} does not name a .zim file`);
  }

  const checksumUrl = `${zimUrl}.${params.checksum}`;
  ctx.log(`kiwix/zim: reading ${checksumUrl}`);
  const expected = parseChecksumFile(await readText(await get(checksumUrl), 64 * 1024), params.checksum, filename);

  const target = join(ctx.outDir, filename);
  const partial = join(ctx.outDir, `.${filename}.part`);
  try {
    const fetched = await download(ctx, await get(zimUrl), partial);
    const actual = params.checksum === 'sha256' ? fetched.sha256 : fetched.md5;
    if (actual !== expected) {
      throw new PermanentError(`checksum mismatch: expected ${params.checksum} ${expected}, got ${actual} for ${filename}`);
    }
    const { header, mimeTypes, metadata } = await inspectZim(partial, { signal: ctx.signal, log: ctx.log });
    await rename(partial, target);
    const report: ZimReport = {
      url: zimUrl,
      filename,
      sha256: fetched.sha256,
      ...(params.checksum === 'md5' ? { md5: fetched.md5 } : {}),
      bytes: fetched.bytes,
      checksum: { algorithm: params.checksum, url: checksumUrl, expected },
      header: { ...header, mimeTypes },
      metadata,
    };
    await writeFile(join(ctx.outDir, 'zim.json'), `${JSON.stringify(report, null, 2)}\n`);
    ctx.log(`kiwix/zim: ${filename}: "${metadata.title ?? '?'}" (${metadata.language ?? '?'}), ${metadata.articleCount ?? '?'} articles`);
    return report;
  } catch (error) {
    await rm(partial, { force: true });
    throw error;
  }
}

async function resolveName(
  ctx: TaskContext,
  params: Params,
  get: Get,
): Promise<string> {
  const { book, date } = splitDatedName(params.name!);
  const folder = folderUrl(params.mirror, params.project ?? projectOf(book));
  if (date) return new URL(`${params.name!}.zim`, folder).href;
  ctx.log(`kiwix/zim: looking up the newest ${book} in ${folder}`);
  const newest = newestInListing(await readText(await get(folder), MAX_LISTING_BYTES), book);
  if (!newest) throw new PermanentError(`no ${book}_YYYY-MM.zim is listed in ${folder}`);
  ctx.log(`kiwix/zim: newest is ${newest}`);
  return new URL(newest, folder).href;
}

/** Streams the body to `path`, hashing as it goes; nothing is held in memory. */
async function download(
  ctx: TaskContext,
  got: FetchedResponse,
  path: string,
): Promise<{ sha256: string; md5: string; bytes: number }> {
  const length = contentLength(got);
  ctx.log(`kiwix/zim: downloading ${got.url.href}${length === undefined ? '' : ` (${length} bytes)`}`);
  const sha256 = createHash('sha256');
  const md5 = createHash('md5');
  let bytes = 0;
  const meter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      sha256.update(chunk);
      md5.update(chunk);
      bytes += chunk.length;
      ctx.progress({ done: bytes, ...(length === undefined ? {} : { total: length }) });
      callback(null, chunk);
    },
  });
  try {
    await pipeline(got.body, meter, createWriteStream(path), { signal: ctx.signal });
  } catch (error) {
    if (ctx.signal.aborted) throw error;
    // A reset connection or a full disk may well pass: let the worker try again.
    throw new RetryableError(`download of ${got.url.href} broke off after ${bytes} bytes: ${errorMessage(error)}`, { cause: error });
  }
  if (length !== undefined && bytes !== length) {
    throw new RetryableError(`download of ${got.url.href} ended after ${bytes} of ${length} bytes`);
  }
  return { sha256: sha256.digest('hex'), md5: md5.digest('hex'), bytes };
}
