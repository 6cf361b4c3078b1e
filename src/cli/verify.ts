/**
 * `task-mgmt verify <provenance-cid> [--gateway URL]`: checks a run's provenance record, the
 * outputs of the tasks it needed (its inputs) and every output it names against their CIDs, through one trustless gateway (README "Provenance"), so a
 * result can be trusted without trusting the app that made it or the gateway that serves it.
 *
 * The record is fetched as one raw block (`?format=raw`) and must hash to the CID given; each
 * output is fetched as a CAR (`?format=car`) read as it streams: every block must hash to its CID,
 * and every block the DAG links to must be there. Nothing but the gateway is asked, a redirect
 * is refused, and memory holds one block at a time plus the CIDs seen.
 */
import * as dagCbor from '@ipld/dag-cbor';
import * as dagJson from '@ipld/dag-json';
import * as dagPb from '@ipld/dag-pb';
import { asyncIterableReader, readBlockHead, readHeader } from '@ipld/car/decoder';
import { CID } from 'multiformats/cid';
import * as raw from 'multiformats/codecs/raw';
import { parseArgs } from 'node:util';
import { MAX_DOCUMENT_BYTES } from '../adapters/ipfs/dag-json-block.js';
import { checkBlock, MAX_BLOCK_BYTES } from '../adapters/ipfs/verify-block.js';
import { provenanceRecordSchema, type ProvenanceRecord } from '../core/runs/provenance.js';

export interface VerifyIo {
  out: (line: string) => void;
  err: (line: string) => void;
}

export interface VerifyDeps {
  env: Readonly<Record<string, string | undefined>>;
  fetch?: typeof fetch;
  /** Longest wait for the gateway's next bytes (default 60 s). */
  idleMs?: number;
}

/** The command as `task-mgmt verify` runs it: the environment, stdout and stderr. */
export function verify(argv: readonly string[]): Promise<number> {
  return verifyCommand(argv, { out: (text) => console.log(text), err: (text) => console.error(text) }, { env: process.env });
}

/** The record is one block, which the app never writes past MAX_DOCUMENT_BYTES. */
const MAX_RECORD_BYTES = MAX_DOCUMENT_BYTES;
const DEFAULT_IDLE_MS = 60_000;

class UsageError extends Error {}

/** Something did not hold, said in one line. */
class Failure extends Error {}

export async function verifyCommand(argv: readonly string[], io: VerifyIo, deps: VerifyDeps): Promise<number> {
  let target: { cid: CID; gateway: Gateway };
  try {
    target = parseVerifyArgs(argv, deps.env);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    io.err(`task-mgmt verify: ${error.message}`);
    return 2;
  }
  const client = new GatewayClient(target.gateway, deps.fetch ?? fetch, deps.idleMs ?? DEFAULT_IDLE_MS);

  let record: ProvenanceRecord;
  try {
    record = await client.record(target.cid);
  } catch (error) {
    if (!(error instanceof Failure)) throw error;
    io.err(`task-mgmt verify: ${error.message}`);
    return 1;
  }
  io.out(line('ok', 'record', target.cid.toString(), safe(describe(record))));

  let failed = 0;
  let checked = 0;
  // The outputs of the tasks this run needed, as they were mounted at /in/<task>: each a whole DAG.
  const inputs = Object.entries(record.inputs).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  for (const [task, text] of inputs) {
    const name = `in/${task}`;
    try {
      const cid = parseCid(text, `the CID of the input ${task}`);
      const dag = await client.dag(cid, new Set());
      io.out(line('ok', name, text, `${count(dag.blocks, 'block')}, ${count(dag.bytes, 'byte')}, each matching its CID; the DAG is complete`));
    } catch (error) {
      if (!(error instanceof Failure)) throw error;
      failed += 1;
      io.out(line('FAIL', name, text, error.message));
    }
  }
  const outputs = record.outputs;
  if (outputs === null) {
    io.out(line('-', 'outputs', '', 'the run added none'));
  } else {
    /** The blocks of the outputs' DAG, once all of it checked out: a file among them needs no fetch of its own. */
    let within = new Set<string>();
    const items: { name: string; cid: string; root: boolean }[] = [
      { name: 'outputs', cid: outputs.root, root: true },
      ...Object.entries(outputs.files).map(([name, cid]) => ({ name, cid, root: false })),
    ];
    for (const item of items) {
      checked += 1;
      try {
        const cid = parseCid(item.cid, `the CID of ${item.name}`);
        if (!item.root && within.has(blockKey(cid))) {
          io.out(line('ok', item.name, item.cid, "within the outputs' DAG, checked with it"));
          continue;
        }
        const seen = new Set<string>();
        const dag = await client.dag(cid, seen);
        if (item.root) within = seen;
        io.out(line('ok', item.name, item.cid, `${count(dag.blocks, 'block')}, ${count(dag.bytes, 'byte')}, each matching its CID; the DAG is complete`));
      } catch (error) {
        if (!(error instanceof Failure)) throw error;
        failed += 1;
        io.out(line('FAIL', item.name, item.cid, error.message));
      }
    }
    if (outputs.unlisted) io.out(line('-', '…', '', `${count(outputs.unlisted, 'more top-level entry', 'more top-level entries')}, not listed in the record, are below the outputs' root`));
  }

  if (failed > 0) {
    io.out(`NOT verified: ${failed} of ${count(inputs.length + checked + 1, 'item')} did not hold (through ${target.gateway.base}/ipfs/)`);
    return 1;
  }
  const parts = [...(inputs.length > 0 ? [count(inputs.length, 'input')] : []), ...(checked > 0 ? [count(checked, 'output')] : [])];
  io.out(`verified: the record${parts.length > 0 ? ` and ${parts.join(' and ')}` : ''} match their CIDs (through ${target.gateway.base}/ipfs/)`);
  return 0;
}

interface Gateway {
  /** Without a trailing slash or `/ipfs`: requests go to `<base>/ipfs/<cid>`. */
  base: string;
  token?: string;
}

function parseVerifyArgs(argv: readonly string[], env: VerifyDeps['env']): { cid: CID; gateway: Gateway } {
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options: { gateway: { type: 'string' } }, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError((error as Error).message.split('\n')[0]!);
  }
  const [text, ...extra] = parsed.positionals;
  if (text === undefined) throw new UsageError('give the CID of a provenance record (the line starting "Provenance" of a check run, or provenance_cid in the API)');
  if (extra.length > 0) throw new UsageError(`one CID at a time, not ${parsed.positionals.length}`);
  let cid: CID;
  try {
    cid = CID.parse(text);
  } catch {
    throw new UsageError(`${JSON.stringify(text.slice(0, 100))} is not a CID`);
  }
  if (cid.code !== dagJson.code) throw new UsageError(`${text} names a ${codecName(cid.code)} block, not a provenance record (DAG-JSON, bagu…)`);

  const given = parsed.values.gateway ?? nonEmpty(env.IPFS_GATEWAY_URL) ?? nonEmpty(env.PUBLIC_URL);
  if (given === undefined) throw new UsageError('no gateway: pass --gateway URL, or set IPFS_GATEWAY_URL or PUBLIC_URL');
  const from = parsed.values.gateway !== undefined ? '--gateway' : env.IPFS_GATEWAY_URL?.trim() ? 'IPFS_GATEWAY_URL' : 'PUBLIC_URL';
  let url: URL;
  try {
    url = new URL(given);
  } catch {
    throw new UsageError(`${from} is not a URL: ${JSON.stringify(given.slice(0, 200))}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`${from} must be an http(s) address, not ${url.protocol}`);
  if (url.username || url.password || url.search || url.hash) throw new UsageError(`${from} must be a plain address, without credentials, ?query or #fragment`);
  const base = url.toString().replace(/\/+$/, '').replace(/\/ipfs$/, '');

  // The token goes only to the app it belongs to, never to a public gateway named instead.
  const token = nonEmpty(env.TASK_MGMT_TOKEN);
  const appOrigins = [env.TASK_MGMT_URL, env.PUBLIC_URL].flatMap((value) => {
    try {
      return value?.trim() ? [new URL(value.trim()).origin] : [];
    } catch {
      return [];
    }
  });
  return { cid, gateway: { base, ...(token && appOrigins.includes(url.origin) ? { token } : {}) } };
}

class GatewayClient {
  constructor(
    private readonly gateway: Gateway,
    private readonly doFetch: typeof fetch,
    private readonly idleMs: number,
  ) {}

  /** The record's block, checked against its CID, then read as a provenance record. */
  async record(cid: CID): Promise<ProvenanceRecord> {
    const bytes = await this.get(cid, 'raw', async (body) => {
      const chunks: Uint8Array[] = [];
      let size = 0;
      for await (const chunk of body) {
        size += chunk.byteLength;
        if (size > MAX_RECORD_BYTES) throw new Failure(`the gateway sent more than ${count(MAX_RECORD_BYTES, 'byte')} for ${cid}: no provenance record is that large`);
        chunks.push(chunk);
      }
      return Buffer.concat(chunks);
    });
    const check = checkBlock(cid, bytes);
    if (check === 'unsupported') throw new Failure(`${cid} uses a hash function this command does not check (only sha2-256)`);
    if (check === 'mismatch') throw new Failure(`the bytes the gateway sent for ${cid} do not hash to that CID: it changed them, or it sent another block`);
    let value: unknown;
    try {
      value = dagJson.decode(bytes);
    } catch (error) {
      throw new Failure(`${cid} is not DAG-JSON: ${oneLine(error)}`);
    }
    const parsed = provenanceRecordSchema.safeParse(value);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw new Failure(`${cid} holds no task-mgmt provenance record: ${issue.path.join('.') || 'the document'} ${issue.message}`);
    }
    return parsed.data;
  }

  /**
   * Reads the DAG below `root` as a CAR: each block checked against its CID, and the links of
   * every block followed, so that a block the DAG needs and the CAR lacks is noticed. `seen`
   * collects the blocks checked (by multihash).
   */
  async dag(root: CID, seen: Set<string>): Promise<{ blocks: number; bytes: number }> {
    return this.get(root, 'car', async (body) => {
      const wanted = new Map<string, CID>();
      const want = (cid: CID) => {
        if (cid.multihash.code === IDENTITY) {
          // Its bytes are in the CID itself: nothing to fetch, but its links count too.
          const key = blockKey(cid);
          if (!seen.has(key)) {
            seen.add(key);
            for (const link of linksOf(cid, cid.multihash.digest)) want(link);
          }
          return;
        }
        if (!seen.has(blockKey(cid))) wanted.set(blockKey(cid), cid);
      };
      want(root);
      const reader = asyncIterableReader(body);
      let blocks = 0;
      let bytes = 0;
      try {
        await readHeader(reader);
        while ((await reader.upTo(8)).length > 0) {
          const { cid, blockLength } = await readBlockHead(reader);
          if (blockLength > MAX_BLOCK_BYTES) throw new Failure(`the CAR holds a block of ${count(blockLength, 'byte')} (${cid}), larger than IPFS blocks are`);
          const block = await reader.exactly(blockLength, true);
          const check = checkBlock(cid, block);
          if (check === 'mismatch') throw new Failure(`block ${cid} does not hash to its CID: the gateway changed it, or sent another block`);
          if (check === 'unsupported') throw new Failure(`block ${cid} uses a hash function this command does not check (only sha2-256)`);
          blocks += 1;
          bytes += blockLength;
          const key = blockKey(cid);
          if (seen.has(key)) continue;
          seen.add(key);
          wanted.delete(key);
          for (const link of linksOf(cid, block)) want(link);
        }
      } catch (error) {
        if (error instanceof Failure) throw error;
        const reason = oneLine(error);
        throw new Failure(`the CAR ${/end of data/i.test(reason) ? 'was cut off' : 'is not a valid CAR'} after ${count(blocks, 'block')} (${reason})`);
      }
      if (wanted.size > 0) {
        const [first] = wanted.values();
        throw new Failure(`the CAR lacks ${count(wanted.size, 'block')} of the DAG, ${first} among them: the outputs are not all there`);
      }
      return { blocks, bytes };
    });
  }

  private async get<T>(cid: CID, format: 'raw' | 'car', read: (body: AsyncIterable<Uint8Array>) => Promise<T>): Promise<T> {
    const url = `${this.gateway.base}/ipfs/${cid.toString()}?format=${format}${format === 'car' ? '&dag-scope=all' : ''}`;
    const where = `the gateway at ${this.gateway.base}`;
    const idle = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const awake = () => {
      clearTimeout(timer);
      timer = setTimeout(() => idle.abort(new Failure(`${where} sent nothing for ${Math.round(this.idleMs / 1000)} s`)), this.idleMs);
    };
    awake();
    try {
      let response: Response;
      try {
        response = await this.doFetch(url, {
          headers: {
            accept: format === 'car' ? 'application/vnd.ipld.car' : 'application/vnd.ipld.raw',
            ...(this.gateway.token ? { authorization: `Bearer ${this.gateway.token}` } : {}),
          },
          // Answered as it is, and refused below: nothing but this gateway is asked.
          redirect: 'manual',
          signal: idle.signal,
        });
      } catch (error) {
        if (idle.signal.aborted) throw idle.signal.reason;
        throw new Failure(`cannot reach ${where}: ${reasonOf(error)}`);
      }
      if (response.status !== 200 || !response.body) throw await this.refusal(response, cid, where);
      const body = (async function* () {
        for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
          awake();
          yield chunk;
        }
      })();
      try {
        return await read(body);
      } catch (error) {
        if (idle.signal.aborted) throw idle.signal.reason;
        throw error;
      }
    } finally {
      clearTimeout(timer);
      idle.abort();
    }
  }

  private async refusal(response: Response, cid: CID, where: string): Promise<Failure> {
    const said = (await response.text().catch(() => '')).replace(/\s+/g, ' ').trim().slice(0, 200);
    const answered = `${where} answered ${response.status}${said ? ` (${said})` : ''}`;
    if (response.status === 404) {
      const hint = this.gateway.token ? '' : '; if it is the app and the run is a private repository\'s, set TASK_MGMT_TOKEN (and TASK_MGMT_URL to the app\'s address)';
      return new Failure(`${answered}: it does not have ${cid}, or no longer pins it${hint}`);
    }
    if (response.status >= 300 && response.status < 400) return new Failure(`${answered}: redirects are not followed, only this gateway is asked`);
    if (response.status === 401 || response.status === 403) return new Failure(`${answered}: TASK_MGMT_TOKEN is not a token this app takes`);
    if (response.status === 200) return new Failure(`${answered} without a body`);
    return new Failure(answered);
  }
}

const IDENTITY = 0x00;

/** The CIDs a block links to, for the codecs IPFS DAGs are made of. */
function linksOf(cid: CID, bytes: Uint8Array): CID[] {
  try {
    if (cid.code === raw.code) return [];
    if (cid.code === dagPb.code) return dagPb.decode(bytes).Links.map((link) => link.Hash);
    if (cid.code === dagJson.code) return cidsIn(dagJson.decode(bytes));
    if (cid.code === dagCbor.code) return cidsIn(dagCbor.decode(bytes));
  } catch (error) {
    throw new Failure(`block ${cid} matches its CID but cannot be read as ${codecName(cid.code)}: ${oneLine(error)}`);
  }
  throw new Failure(`block ${cid} is ${codecName(cid.code)}, whose links this command cannot follow`);
}

function cidsIn(value: unknown): CID[] {
  const cid = CID.asCID(value);
  if (cid) return [cid];
  if (Array.isArray(value)) return value.flatMap(cidsIn);
  if (value !== null && typeof value === 'object' && !(value instanceof Uint8Array)) return Object.values(value).flatMap(cidsIn);
  return [];
}

function codecName(code: number): string {
  const names: Record<number, string> = { [raw.code]: 'raw', [dagPb.code]: 'dag-pb', [dagJson.code]: 'dag-json', [dagCbor.code]: 'dag-cbor' };
  return names[code] ?? `codec 0x${code.toString(16)}`;
}

/** Blocks are one whatever the CID version: keyed by multihash. */
function blockKey(cid: CID): string {
  return Buffer.from(cid.multihash.bytes).toString('base64');
}

function parseCid(text: string, what: string): CID {
  try {
    return CID.parse(text);
  } catch {
    throw new Failure(`${what} in the record, ${JSON.stringify(text.slice(0, 100))}, is not a CID`);
  }
}

/** What the record says the run was, in one line: all of it the record's own words, shown as data. */
function describe(record: ProvenanceRecord): string {
  const where = `${record.repository}${record.number !== null ? `#${record.number}` : ''}`;
  return `${where} · ${record.task} (${record.taskType}) at ${record.sha.slice(0, 12)} · ${record.conclusion} · finished ${record.finishedAt}`;
}

/** `ok    name   cid  detail`, names and CIDs padded so the columns line up for short names. */
function line(status: string, name: string, cid: string, detail: string): string {
  return `${status.padEnd(5)} ${safe(name).padEnd(12)} ${cid ? `${cid}  ` : ''}${detail}`;
}

/** A name from the record on one line of a terminal: control characters shown escaped. */
function safe(text: string): string {
  return JSON.stringify(text).slice(1, -1).slice(0, 300);
}

function count(n: number, one: string, many = `${one}s`): string {
  return `${n.toLocaleString('en-US')} ${n === 1 ? one : many}`;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value?.trim() ? value.trim() : undefined;
}

function oneLine(error: unknown): string {
  return ((error as Error)?.message ?? String(error)).replace(/\s+/g, ' ').trim().slice(0, 200);
}

function reasonOf(error: unknown): string {
  const failure = error as { message?: string; cause?: { code?: string; message?: string } };
  return (failure.cause?.code ?? failure.cause?.message ?? failure.message ?? String(error)).replace(/\s+/g, ' ').trim().slice(0, 200);
}
