/**
 * `web/warc`: crawl pages breadth-first from seed URLs, within a scope and a depth, into one
 * `crawl.warc.gz` (warcinfo, then a request and a response record per fetch) and a `pages.json`
 * index. Every fetch goes through the context's guarded fetch, so private addresses stay out of reach.
 */
import { createHash, randomUUID } from 'node:crypto';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { errorMessage } from '../../../src/ports/errors.js';
import type { FetchedResponse, TaskContext, TaskResult, TaskType } from '../../../src/ports/task-type.js';
import { saveBody, type SavedBody } from '../../shared/http-body.js';
import { responseHeaderBlock, WarcWriter } from '../../shared/warc-writer.js';

/* ------------------------------------------------------------------------------ parameters */

const httpUrl = z
  .string({ error: 'must be a URL' })
  .max(8192, { error: 'must be at most 8192 characters', abort: true })
  .refine((value) => URL.canParse(value), { error: 'must be an absolute URL, e.g. https://example.org/', abort: true })
  .refine((value) => /^https?:$/.test(new URL(value).protocol), { error: 'must be an http or https URL' });

export const webWarcParams = z
  .object({
    /** Seed URLs: where the crawl starts (at depth 0). */
    urls: z.array(httpUrl, { error: 'must be a list of URLs' }).min(1, { error: 'needs at least one URL' }).max(1000, { error: 'takes at most 1000 URLs' }),
    /** How many links away from a seed to follow (0: the seeds and their page requisites only). */
    depth: z.number({ error: 'must be a number from 0 to 5' }).int().min(0).max(5, { error: 'must be at most 5' }).default(1),
    /** Which discovered URLs are followed: same host, below the seed's folder, or same domain. */
    scope: z.enum(['host', 'prefix', 'domain'], { error: 'must be host, prefix or domain' }).default('host'),
    /** Stop after fetching this many URLs (pages, requisites and redirects). */
    max_pages: z.number({ error: 'must be a number' }).int().min(1, { error: 'must be at least 1' }).max(1_000_000).default(1000),
  })
  .strict();
export type WebWarcParams = z.infer<typeof webWarcParams>;

/* ------------------------------------------------------------------------------ link extraction */

export interface ExtractedLinks {
  /** `<a href>` / `<area href>`: followed one level deeper. */
  links: URL[];
  /** `<img src>`, `<link href>`, `<script src>`…: fetched at the page's own depth. */
  requisites: URL[];
}

const TAG = /<([a-z][a-z0-9]*)\b((?:[^>"']|"[^"]*"|'[^']*')*)>/gi;
const ATTRIBUTE = /([^\s"'>/=]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+)))?/g;
const REQUISITE_ATTRIBUTES: Record<string, string[]> = {
  img: ['src', 'srcset'],
  link: ['href'],
  script: ['src'],
  source: ['src', 'srcset'],
  video: ['src', 'poster'],
  audio: ['src'],
  iframe: ['src'],
  embed: ['src'],
  input: ['src'],
};
const LINK_ATTRIBUTES: Record<string, string[]> = { a: ['href'], area: ['href'] };

/**
 * Links of an HTML page without an HTML parser: tags are matched with quoted attribute values
 * kept whole, comments and the text of script and style elements are skipped, entities in
 * attribute values are decoded, and `<base href>` is honoured. Only http(s) URLs come back,
 * without fragments.
 */
export function extractLinks(html: string, pageUrl: URL): ExtractedLinks {
  const cleaned = html.replace(/<!--[\s\S]*?-->/g, '').replace(/<(script|style)\b((?:[^>"']|"[^"]*"|'[^']*')*)>[\s\S]*?<\/\1\s*>/gi, '<$1$2>');
  let base = pageUrl;
  const links: URL[] = [];
  const requisites: URL[] = [];
  for (const tag of cleaned.matchAll(TAG)) {
    const name = tag[1]!.toLowerCase();
    const attributes = parseAttributes(tag[2] ?? '');
    if (name === 'base') {
      const href = attributes.get('href');
      const resolved = href === undefined ? undefined : resolveUrl(href, pageUrl);
      if (resolved) base = resolved;
      continue;
    }
    const target = LINK_ATTRIBUTES[name] ? links : REQUISITE_ATTRIBUTES[name] ? requisites : undefined;
    if (!target) continue;
    for (const attribute of LINK_ATTRIBUTES[name] ?? REQUISITE_ATTRIBUTES[name] ?? []) {
      const value = attributes.get(attribute);
      if (value === undefined) continue;
      const candidates = attribute === 'srcset' ? value.split(',').map((entry) => entry.trim().split(/\s+/)[0] ?? '') : [value];
      for (const candidate of candidates) {
        const resolved = resolveUrl(candidate, base);
        if (resolved) target.push(resolved);
      }
    }
  }
  return { links, requisites };
}

function parseAttributes(text: string): Map<string, string> {
  const attributes = new Map<string, string>();
  for (const match of text.matchAll(ATTRIBUTE)) {
    const name = match[1]!.toLowerCase();
    if (!attributes.has(name)) attributes.set(name, decodeEntities(match[2] ?? match[3] ?? match[4] ?? ''));
  }
  return attributes;
}

const NAMED_ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: '\u00a0' };

function decodeEntities(value: string): string {
  return value.replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);?/gi, (entity, body: string) => {
    if (body.startsWith('#')) {
      const code = body[1] === 'x' || body[1] === 'X' ? parseInt(body.slice(2), 16) : parseInt(body.slice(1), 10);
      return Number.isFinite(code) && code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : entity;
    }
    return NAMED_ENTITIES[body.toLowerCase()] ?? entity;
  });
}

function resolveUrl(href: string, base: URL): URL | undefined {
  const trimmed = href.trim();
  if (!trimmed) return undefined;
  let url: URL;
  try {
    url = new URL(trimmed, base);
  } catch {
    return undefined;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return undefined;
  url.hash = '';
  return url;
}

/* ------------------------------------------------------------------------------ scope */

/** Whether a URL is inside the crawl's scope, judged against every seed. */
export function inScope(url: URL, seeds: URL[], scope: WebWarcParams['scope']): boolean {
  return seeds.some((seed) => {
    switch (scope) {
      case 'host':
        return url.hostname === seed.hostname;
      case 'prefix':
        return url.href.startsWith(seed.origin + seed.pathname.slice(0, seed.pathname.lastIndexOf('/') + 1));
      case 'domain': {
        // Without the public suffix list, "domain" is the seed's host minus a leading www.
        const domain = seed.hostname.replace(/^www\./, '');
        return url.hostname === domain || url.hostname.endsWith(`.${domain}`);
      }
    }
  });
}

/* ------------------------------------------------------------------------------ the crawl */

export interface PageEntry {
  url: string;
  depth: number;
  status: number | null;
  contentType: string | null;
  /** Bytes of the body. */
  size: number;
  /** Where a redirect pointed. */
  location?: string;
  error?: string;
}

/** HTML bigger than this is archived but not searched for links. */
const MAX_HTML_FOR_LINKS = 8 * 1024 * 1024;
const PROGRESS_INTERVAL_MS = 1000;

async function crawl(ctx: TaskContext, params: WebWarcParams): Promise<TaskResult> {
  const seeds = params.urls.map((url) => {
    const parsed = new URL(url);
    parsed.hash = '';
    return parsed;
  });
  const warcPath = join(ctx.outDir, 'crawl.warc.gz');
  const writer = await WarcWriter.create(warcPath, {
    signal: ctx.signal,
    info: {
      software: 'task-mgmt web/warc',
      format: 'WARC File Format 1.1',
      'task-run-id': ctx.runId,
      seeds: seeds.map((seed) => seed.href).join(' '),
      scope: params.scope,
      depth: String(params.depth),
    },
  });

  const queue: { url: URL; depth: number }[] = [];
  const seen = new Set<string>();
  const enqueue = (url: URL, depth: number) => {
    if (depth > params.depth || seen.has(url.href) || !inScope(url, seeds, params.scope)) return;
    seen.add(url.href);
    queue.push({ url, depth });
  };
  for (const seed of seeds) {
    if (!seen.has(seed.href)) {
      seen.add(seed.href);
      queue.push({ url: seed, depth: 0 });
    }
  }

  const pages: PageEntry[] = [];
  let lastProgress = 0;
  const report = (force = false) => {
    const now = Date.now();
    if (!force && now - lastProgress < PROGRESS_INTERVAL_MS) return;
    lastProgress = now;
    ctx.progress({ done: pages.length, total: seen.size, message: `${pages.length} of ${seen.size} URLs fetched` });
  };

  try {
    // A plain array as a FIFO: index instead of shift(), so a long crawl does not go quadratic.
    for (let next = 0; next < queue.length; next++) {
      ctx.signal.throwIfAborted();
      if (pages.length >= params.max_pages) {
        ctx.log(`max_pages ${params.max_pages} reached; ${queue.length - next} discovered URLs were not fetched`);
        break;
      }
      const { url, depth } = queue[next]!;
      const entry = await fetchOne(ctx, writer, url, depth);
      pages.push(entry.page);
      if (entry.location) enqueue(entry.location, depth);
      for (const requisite of entry.links?.requisites ?? []) enqueue(requisite, depth);
      for (const link of entry.links?.links ?? []) enqueue(link, depth + 1);
      report();
    }
    await writer.close();
  } catch (error) {
    await writer.discard();
    throw error;
  }
  report(true);
  await writeFile(join(ctx.outDir, 'pages.json'), `${JSON.stringify(pages, null, 2)}\n`);

  const failed = pages.filter((page) => page.error !== undefined).length;
  const bytes = pages.reduce((sum, page) => sum + page.size, 0);
  const metadata = { pages: pages.length, failed, bytes, discovered: seen.size, warc: 'crawl.warc.gz' };
  ctx.log(`crawled ${pages.length} URLs (${failed} failed, ${bytes} bytes) into crawl.warc.gz`);
  if (failed === pages.length) {
    return { state: 'failed', error: `no URL could be fetched: ${pages[0]?.error ?? 'nothing to fetch'}`, metadata };
  }
  return { metadata };
}

async function fetchOne(
  ctx: TaskContext,
  writer: WarcWriter,
  url: URL,
  depth: number,
): Promise<{ page: PageEntry; location?: URL; links?: ExtractedLinks }> {
  const spool = join(ctx.scratchDir, `warc-body-${randomUUID()}`);
  const date = new Date();
  try {
    let response: FetchedResponse;
    let saved: SavedBody;
    let headerBlock: Buffer;
    let blockSha256: string;
    try {
      response = await ctx.fetch.get(url, { signal: ctx.signal, redirect: 'manual' });
      headerBlock = responseHeaderBlock(response);
      const blockHash = createHash('sha256').update(headerBlock);
      saved = await saveBody(response, spool, { signal: ctx.signal, extraHash: blockHash });
      blockSha256 = blockHash.digest('hex');
    } catch (error) {
      // A URL that cannot be fetched is a line in pages.json, not the end of the crawl.
      if (ctx.signal.aborted) throw ctx.signal.reason ?? error;
      ctx.log(`${url.href}: ${errorMessage(error)}`);
      return { page: { url: url.href, depth, status: null, contentType: null, size: 0, error: errorMessage(error) } };
    }

    // Response first, then the request pointing at it, as warcio and pywb record them.
    const responseId = await writer.writeResponse(response, date, { headerBlock, body: { path: spool }, bytes: saved.bytes, sha256: saved.sha256, blockSha256 });
    await writer.writeRequest(response.request, date, responseId);

    const contentType = response.headers['content-type'] ?? null;
    const page: PageEntry = { url: url.href, depth, status: response.status, contentType, size: saved.bytes };
    const location = response.headers.location;
    if (response.status >= 300 && response.status < 400 && location !== undefined) {
      const target = URL.canParse(location, url.href) ? new URL(location, url) : undefined;
      page.location = target?.href ?? location;
      if (target && (target.protocol === 'http:' || target.protocol === 'https:')) {
        target.hash = '';
        return { page, location: target };
      }
      return { page };
    }
    if (response.status === 200 && /^\s*(text\/html|application\/xhtml\+xml)/i.test(contentType ?? '') && saved.bytes <= MAX_HTML_FOR_LINKS) {
      const html = await readFile(spool, 'utf8');
      return { page, links: extractLinks(html, url) };
    }
    return { page };
  } finally {
    await rm(spool, { force: true });
  }
}

export const webWarc: TaskType<WebWarcParams> = {
  name: 'web/warc',
  description: 'Crawl pages from seed URLs, within a scope and depth, into a WARC file',
  params: webWarcParams,
  network: true,
  run: crawl,
};
