/**
 * `ipfs/add-url`: stream one URL into the task's output folder (which the worker adds to IPFS),
 * verifying an expected SHA-256 and a size limit on the way, or record it as a WARC file.
 * Memory stays flat whatever the size: the body goes straight from the socket to disk.
 */
import { createHash } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { PermanentError, RetryableError, errorMessage } from '../../../src/ports/errors.js';
import { sizeSchema } from '../../../src/ports/units.js';
import type { FetchedResponse, SentRequest, TaskContext, TaskResult, TaskType } from '../../../src/ports/task-type.js';
import { contentLength, saveBody } from '../../shared/http-body.js';
import { responseHeaderBlock, WarcWriter } from '../../shared/warc-writer.js';

const GiB = 1024 ** 3;
const DEFAULT_MAX_BYTES = 50 * GiB;
const PROGRESS_INTERVAL_MS = 1000;
/** Redirect bodies kept in the WARC; they are tiny in practice, and never worth a spool file. */
const MAX_REDIRECT_BODY = 64 * 1024;

export const addUrlParams = z
  .object({
    /** The http or https URL to fetch. Redirects are followed (at most 5). */
    url: z
      .string({ error: 'must be a URL' })
      .max(8192, { error: 'must be at most 8192 characters', abort: true })
      .refine((value) => URL.canParse(value), { error: 'must be an absolute URL, e.g. https://example.org/file.zip', abort: true })
      .refine((value) => /^https?:$/.test(new URL(value).protocol), { error: 'must be an http or https URL' }),
    /** Expected SHA-256 of the body, 64 hexadecimal digits; a mismatch fails the task. */
    sha256: z
      .string({ error: 'must be a SHA-256 in hexadecimal' })
      .regex(/^[0-9a-f]{64}$/i, { error: 'must be 64 hexadecimal digits (a SHA-256)' })
      .transform((value) => value.toLowerCase())
      .optional(),
    /** Largest body accepted, in bytes or with a unit (`512m`, `50g`); default 50 GiB. */
    max_bytes: sizeSchema.default(DEFAULT_MAX_BYTES),
    /** Name of the output file; default the last segment of the URL's path, else `download`. */
    filename: z
      .string({ error: 'must be a file name' })
      .min(1, { error: 'must not be empty' })
      .max(200, { error: 'must be at most 200 characters' })
      .refine((name) => !/[/\\\u0000-\u001f\u007f]/.test(name) && name !== '.' && name !== '..', {
        error: 'must be a plain file name: no slashes, no control characters, not . or ..',
      })
      .optional(),
    /** Record the exchange as `<name>.warc.gz` (warcinfo, request, response) instead of the bare file. */
    warc: z.boolean({ error: 'must be true or false' }).default(false),
  })
  .strict();
export type AddUrlParams = z.infer<typeof addUrlParams>;

/** A redirect on the way, kept for the WARC so the requested URL replays too. */
interface RecordedHop {
  response: Pick<FetchedResponse, 'url' | 'remoteAddress' | 'httpVersion' | 'status' | 'statusText' | 'rawHeaders'>;
  request: SentRequest;
  date: Date;
  body: Buffer;
  truncated: boolean;
}

async function run(ctx: TaskContext, params: AddUrlParams): Promise<TaskResult> {
  const hops: RecordedHop[] = [];
  const onRedirect = params.warc ? async (hop: FetchedResponse) => void hops.push(await recordHop(hop)) : undefined;

  const date = new Date();
  let response: FetchedResponse;
  try {
    response = await ctx.fetch.get(params.url, { signal: ctx.signal, ...(onRedirect ? { onRedirect } : {}) });
  } catch (error) {
    return failedOrThrow(ctx, error);
  }
  const finalUrl = response.url.href;
  if (response.redirectedFrom.length > 0) ctx.log(`redirected to ${finalUrl}`);

  if (response.status < 200 || response.status > 299) {
    response.body.destroy();
    const message = `${finalUrl} answered HTTP ${response.status} ${response.statusText}`.trimEnd();
    if (response.status === 429 || response.status >= 500) throw new RetryableError(message);
    return { state: 'failed', error: message };
  }
  const announced = contentLength(response);
  if (announced !== undefined && announced > params.max_bytes) {
    response.body.destroy();
    return { state: 'failed', error: `${finalUrl} announces ${announced} bytes (Content-Length), more than max_bytes ${params.max_bytes}` };
  }

  const name = params.filename ?? nameFromUrl(response.url) ?? nameFromUrl(new URL(params.url)) ?? 'download';
  const bodyPath = params.warc ? join(ctx.scratchDir, name) : join(ctx.outDir, name);
  const headerBlock = responseHeaderBlock(response);
  const blockHash = createHash('sha256').update(headerBlock);
  const contentType = response.headers['content-type'] ?? null;
  ctx.log(`fetching ${finalUrl} (${announced === undefined ? 'size unknown' : `${announced} bytes`}${contentType ? `, ${contentType}` : ''}) into ${params.warc ? `${name}.warc.gz` : name}`);

  let lastProgress = 0;
  const report = (done: number, force = false) => {
    const now = Date.now();
    if (!force && now - lastProgress < PROGRESS_INTERVAL_MS) return;
    lastProgress = now;
    ctx.progress(announced === undefined ? { done } : { done, total: announced });
  };
  report(0, true);

  let saved: { bytes: number; sha256: string };
  try {
    saved = await saveBody(response, bodyPath, { signal: ctx.signal, maxBytes: params.max_bytes, onBytes: report, extraHash: blockHash });
  } catch (error) {
    await rm(bodyPath, { force: true });
    return failedOrThrow(ctx, error, (message) => message.replace(/ is larger than the limit of (\d+) bytes/, ' is larger than max_bytes $1'));
  }
  report(saved.bytes, true);

  if (params.sha256 !== undefined && params.sha256 !== saved.sha256) {
    await rm(bodyPath, { force: true });
    return { state: 'failed', error: `sha256 mismatch for ${finalUrl}: expected ${params.sha256}, got ${saved.sha256}` };
  }

  let file = name;
  if (params.warc) {
    file = `${name}.warc.gz`;
    try {
      await writeWarc(ctx, join(ctx.outDir, file), hops, {
        response,
        date,
        payload: { headerBlock, body: { path: bodyPath }, bytes: saved.bytes, sha256: saved.sha256, blockSha256: blockHash.digest('hex') },
      });
    } finally {
      await rm(bodyPath, { force: true });
    }
  }

  ctx.log(`${file}: ${saved.bytes} bytes, sha256 ${saved.sha256}`);
  return { metadata: { url: params.url, finalUrl, bytes: saved.bytes, sha256: saved.sha256, contentType, file } };
}

async function writeWarc(
  ctx: TaskContext,
  path: string,
  hops: RecordedHop[],
  final: { response: FetchedResponse; date: Date; payload: Parameters<WarcWriter['writeResponse']>[2] },
): Promise<void> {
  const writer = await WarcWriter.create(path, {
    signal: ctx.signal,
    info: { software: 'task-mgmt ipfs/add-url', format: 'WARC File Format 1.1', 'task-run-id': ctx.runId },
  });
  try {
    for (const hop of hops) {
      const payload = { headerBlock: responseHeaderBlock(hop.response), body: { bytes: hop.body }, bytes: hop.body.length, sha256: sha256(hop.body) };
      const id = await writer.writeResponse(hop.response, hop.date, hop.truncated ? { ...payload, truncated: 'length' } : payload);
      await writer.writeRequest(hop.request, hop.date, id);
    }
    const id = await writer.writeResponse(final.response, final.date, final.payload);
    await writer.writeRequest(final.response.request, final.date, id);
    await writer.close();
  } catch (error) {
    await writer.discard();
    throw error;
  }
}

async function recordHop(hop: FetchedResponse): Promise<RecordedHop> {
  const chunks: Buffer[] = [];
  let size = 0;
  let truncated = false;
  for await (const chunk of hop.body) {
    const buffer = chunk as Buffer;
    if (size + buffer.length > MAX_REDIRECT_BODY) {
      chunks.push(buffer.subarray(0, MAX_REDIRECT_BODY - size));
      truncated = true;
      break;
    }
    chunks.push(buffer);
    size += buffer.length;
  }
  return { response: hop, request: hop.request, date: new Date(), body: Buffer.concat(chunks), truncated };
}

function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Permanent problems (refused, too large, 404) fail the run with their message; cancellation and transient errors propagate. */
function failedOrThrow(ctx: TaskContext, error: unknown, rephrase: (message: string) => string = (message) => message): TaskResult {
  if (ctx.signal.aborted) throw ctx.signal.reason ?? error;
  if (error instanceof PermanentError) return { state: 'failed', error: rephrase(errorMessage(error)) };
  throw error;
}

/** The last segment of a URL's path as a safe file name, or undefined when there is none. */
export function nameFromUrl(url: URL): string | undefined {
  const segment = url.pathname.split('/').pop() ?? '';
  let decoded: string;
  try {
    decoded = decodeURIComponent(segment);
  } catch {
    decoded = segment;
  }
  const safe = decoded
    .replace(/[/\\\u0000-\u001f\u007f]/g, '_')
    .replace(/^\.+/, '')
    .slice(0, 200)
    .trim();
  return safe === '' ? undefined : safe;
}

export const addUrl: TaskType<AddUrlParams> = {
  name: 'ipfs/add-url',
  description: 'Stream a URL to IPFS, optionally verified by SHA-256 or recorded as a WARC file',
  params: addUrlParams,
  network: true,
  run,
};
