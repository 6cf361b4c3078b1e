/**
 * What a request under `/ipfs/` asks for, read from its URL and headers alone (no block is read):
 * the CID and the path below it, the response format, the CAR's scope and shape, a byte range and
 * a cache validator. Follows the IPFS Path Gateway and Trustless Gateway specifications
 * (https://specs.ipfs.tech/http-gateways/path-gateway/, …/trustless-gateway/): `format=` wins over
 * `Accept`, `dag-scope` defaults to `all`, `entity-bytes` implies `entity`.
 *
 * Every refusal is a GatewayRequestError carrying the status the gateway answers and one line.
 */
import { CID } from 'multiformats/cid';

/** Longest request path served, in characters (percent-encoded, as sent). */
export const maxPathLength = 4096;
/** Most path segments below the CID. */
export const maxPathSegments = 64;

export class GatewayRequestError extends Error {
  override readonly name = 'GatewayRequestError';
  constructor(
    readonly status: 400 | 405 | 406 | 412,
    message: string,
  ) {
    super(message);
  }
}

export type DagScope = 'all' | 'entity' | 'block';

/**
 * `entity-bytes=from:to`: byte offsets, inclusive; negative ones count from the end, and `to`
 * may be `*` (the end).
 */
export interface EntityBytes {
  from: number;
  to: number | '*';
}

export interface CarRequest {
  kind: 'car';
  scope: DagScope;
  /** `dups=y`: a block is sent every time the walk meets it; else once. */
  dups: boolean;
  entityBytes: EntityBytes | null;
}

export type ResponseFormat = { kind: 'raw' } | CarRequest | { kind: 'plain' };

export interface GatewayRequest {
  cid: CID;
  /** Decoded path segments below the CID, empty for `/ipfs/<cid>`. */
  segments: string[];
  /** The path ends with `/` (a folder asked for as such). */
  trailingSlash: boolean;
  /** The content path as requested, still percent-encoded: `X-Ipfs-Path`. */
  contentPath: string;
  format: ResponseFormat;
  /** The format was negotiated through `Accept` rather than named by `format=`: answer with `Content-Location`. */
  negotiated: boolean;
  /** `filename=`: names a download and helps guess its type. */
  filename: string | null;
  /** `download=true`: an attachment, never shown inline. */
  download: boolean;
}

/** Parses the request; throws GatewayRequestError for anything malformed. `url.pathname` starts with `/ipfs/`. */
export function parseGatewayRequest(url: URL, accept: string | undefined): GatewayRequest {
  const pathname = url.pathname;
  if (pathname.length > maxPathLength) throw new GatewayRequestError(400, `the path is longer than ${maxPathLength} characters`);
  const rest = pathname.slice('/ipfs/'.length);
  const [cidText = '', ...raw] = rest.split('/');
  if (cidText === '') throw new GatewayRequestError(400, 'give a CID: /ipfs/<cid>[/<path>]');
  const cid = parseCid(cidText);
  const trailingSlash = raw.length > 0 && raw.at(-1) === '';
  const segments = raw.filter((segment) => segment !== '').map(decodeSegment);
  if (segments.length > maxPathSegments) throw new GatewayRequestError(400, `the path has more than ${maxPathSegments} segments`);
  // The UnixFS path walker splits on slashes not escaped by a backslash: a folder name ending in
  // one would swallow the next segment (the importer refuses such folder names anyway).
  if (segments.slice(0, -1).some((segment) => segment.endsWith('\\'))) throw new GatewayRequestError(400, 'a folder name in the path ends with a backslash');

  const query = url.searchParams;
  const named = query.get('format');
  let format: ResponseFormat;
  if (named !== null) {
    if (named === 'raw') format = { kind: 'raw' };
    else if (named === 'car') format = carRequest(query, {});
    else throw new GatewayRequestError(400, `format=${clip(named)} is not served here; use format=raw or format=car, or no format for the file itself`);
  } else {
    const negotiated = negotiate(accept);
    format = negotiated.kind === 'car' ? carRequest(query, negotiated.params) : negotiated;
  }
  if (format.kind === 'raw' && segments.length > 0) {
    // Trustless Gateway spec: a block is asked for by CID alone.
    throw new GatewayRequestError(400, 'a raw block is asked for by CID alone: /ipfs/<cid>?format=raw, without a path');
  }
  return {
    cid,
    segments,
    trailingSlash,
    contentPath: pathname,
    format,
    negotiated: named === null && format.kind !== 'plain',
    filename: query.get('filename'),
    download: query.get('download') === 'true',
  };
}

function parseCid(text: string): CID {
  try {
    return CID.parse(decodeURIComponent(text));
  } catch {
    throw new GatewayRequestError(400, 'the path does not start with a valid CID: /ipfs/<cid>[/<path>]');
  }
}

function decodeSegment(segment: string): string {
  let decoded: string;
  try {
    decoded = decodeURIComponent(segment);
  } catch {
    throw new GatewayRequestError(400, 'the path is not valid percent-encoded UTF-8');
  }
  if (decoded === '.' || decoded === '..' || decoded.includes('/') || decoded.includes('\0')) {
    throw new GatewayRequestError(400, 'a path segment is ".", "..", or holds an encoded "/" or NUL');
  }
  return decoded;
}

interface CarParams {
  version?: string | undefined;
  order?: string | undefined;
  dups?: string | undefined;
}

/** `car-*` query parameters win over the `Accept` parameters (Trustless Gateway spec). */
function carRequest(query: URLSearchParams, accepted: CarParams): CarRequest {
  const version = query.get('car-version') ?? accepted.version;
  const order = query.get('car-order') ?? accepted.order;
  const dups = query.get('car-dups') ?? accepted.dups;
  if (version !== undefined && version !== '1') throw new GatewayRequestError(400, 'only CAR version 1 is served (car-version=1)');
  if (order !== undefined && order !== 'dfs' && order !== 'unk') throw new GatewayRequestError(400, 'car-order must be dfs or unk');
  if (dups !== undefined && dups !== 'y' && dups !== 'n') throw new GatewayRequestError(400, 'car-dups must be y or n');
  const scopeText = query.get('dag-scope') ?? 'all';
  if (scopeText !== 'all' && scopeText !== 'entity' && scopeText !== 'block') throw new GatewayRequestError(400, 'dag-scope must be all, entity or block');
  const bytesText = query.get('entity-bytes');
  const entityBytes = bytesText === null ? null : parseEntityBytes(bytesText);
  // entity-bytes implies dag-scope=entity.
  return { kind: 'car', scope: entityBytes ? 'entity' : scopeText, dups: dups === 'y', entityBytes };
}

function parseEntityBytes(text: string): EntityBytes {
  const match = /^(-?\d{1,15}):(-?\d{1,15}|\*)$/.exec(text);
  if (!match) throw new GatewayRequestError(400, 'entity-bytes must be from:to, byte offsets (negative from the end) or * for the end');
  const from = Number(match[1]);
  const to = match[2] === '*' ? '*' : Number(match[2]);
  if (to !== '*' && from >= 0 && to >= 0 && to < from) throw new GatewayRequestError(400, 'entity-bytes: to is before from');
  return { from, to };
}

interface MediaRange {
  type: string;
  params: Record<string, string>;
  q: number;
}

/**
 * The response type `Accept` prefers among those served: a raw block, a CARv1 (of the shapes
 * served), or the content itself for anything else. 406 only when every range names a CAR shape
 * that is not served.
 */
function negotiate(accept: string | undefined): { kind: 'raw' } | { kind: 'car'; params: CarParams } | { kind: 'plain' } {
  const ranges = parseAccept(accept ?? '');
  if (ranges.length === 0) return { kind: 'plain' };
  for (const range of ranges) {
    if (range.type === 'application/vnd.ipld.raw') return { kind: 'raw' };
    if (range.type === 'application/vnd.ipld.car') {
      const { version, order, dups } = range.params;
      const served = (version === undefined || version === '1') && (order === undefined || order === 'dfs' || order === 'unk') && (dups === undefined || dups === 'y' || dups === 'n');
      if (served) return { kind: 'car', params: { version, order, dups } };
      continue;
    }
    return { kind: 'plain' };
  }
  throw new GatewayRequestError(406, 'only application/vnd.ipld.car; version=1 with order=dfs|unk and dups=y|n is served');
}

/** Media ranges by preference: higher `q` first, the header's order among equals; `q=0` left out. */
function parseAccept(header: string): MediaRange[] {
  const ranges: MediaRange[] = [];
  for (const part of header.split(',').slice(0, 32)) {
    const [type = '', ...paramTexts] = part.split(';').map((text) => text.trim());
    if (type === '') continue;
    const params: Record<string, string> = {};
    for (const text of paramTexts) {
      const at = text.indexOf('=');
      if (at > 0) params[text.slice(0, at).trim().toLowerCase()] = text.slice(at + 1).trim().replace(/^"(.*)"$/, '$1');
    }
    const q = params.q === undefined ? 1 : Number(params.q);
    delete params.q;
    if (!(q > 0)) continue;
    ranges.push({ type: type.toLowerCase(), params, q });
  }
  return ranges.map((range, index) => ({ range, index })).sort((a, b) => b.range.q - a.range.q || a.index - b.index).map(({ range }) => range);
}

/** An inclusive byte range of a body of known size. */
export interface ByteRange {
  start: number;
  end: number;
}

/**
 * A single `Range: bytes=…` (RFC 9110 §14.1.2) against a body of `size` bytes: the range, or
 * 'unsatisfiable' (416), or null to send the whole body (no Range, another unit, several ranges,
 * or a malformed one — a server may ignore those).
 */
export function parseRange(header: string | undefined, size: number): ByteRange | 'unsatisfiable' | null {
  if (header === undefined) return null;
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match || (match[1] === '' && match[2] === '')) return null;
  if (match[1] === '') {
    const suffix = Number(match[2]);
    if (suffix === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(match[1]);
  const end = match[2] === '' ? Number.MAX_SAFE_INTEGER : Number(match[2]);
  if (end < start) return null;
  if (start >= size) return 'unsatisfiable';
  return { start, end: Math.min(end, size - 1) };
}

/** Whether `If-None-Match` names `etag` (weak comparison, as RFC 9110 §13.1.2 asks), or is `*`. */
export function matchesEtag(ifNoneMatch: string | undefined, etag: string): boolean {
  if (ifNoneMatch === undefined) return false;
  if (ifNoneMatch.trim() === '*') return true;
  const bare = (tag: string) => tag.trim().replace(/^W\//, '');
  return ifNoneMatch.split(',').some((tag) => bare(tag) === bare(etag));
}

function clip(text: string): string {
  return text.length > 20 ? `${text.slice(0, 20)}…` : text;
}
