/**
 * `task-mgmt verify` against the app's own trustless gateway, and against gateways that lie.
 *
 * First on real parts in this process: outputs and a provenance record written as the worker
 * writes them (the embedded store, the SQLite run store's pins), served by the app's gateway
 * handler, and checked by the command, directly and through small HTTP servers in front of that
 * gateway that change a byte of a block, leave a block out, answer 404 or redirect. Then the
 * whole app: a /run on a pull request's repository makes a record whose CID the check run and the
 * API name, and `task-mgmt verify` (the built command, in its own process) accepts it through the
 * app's gateway and refuses it through one that changes a byte.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CarBlockIterator } from '@ipld/car/iterator';
import { CarWriter } from '@ipld/car/writer';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { pinnedAccess } from '../../src/adapters/http/ipfs-gateway-access.js';
import { createIpfsGateway } from '../../src/adapters/http/ipfs-gateway.js';
import { EmbeddedIpfsStore } from '../../src/adapters/ipfs/embedded-ipfs-store.js';
import { SqliteRunStore } from '../../src/adapters/store/sqlite-run-store.js';
import { verifyCommand } from '../../src/cli/verify.js';
import { addAndPin } from '../../src/core/pins/add-and-pin.js';
import type { RepoRef, Run } from '../../src/core/runs/run.js';
import { writeProvenance } from '../../src/worker/provenance.js';
import { at, newRun } from '../contracts/run-store.contract.js';
import { FakeGitHub } from '../fake-github/index.js';
import { freePort, projectRoot, startApp, type AppProcess } from '../support/app-process.js';
import { requireServices } from '../support/services.js';

const open: RepoRef = { owner: 'octo-org', name: 'open', installationId: 7 };
const secret: RepoRef = { owner: 'octo-org', name: 'secret', installationId: 7 };
const serviceToken = `svc-${randomUUID()}`;

/** An HTTP server on loopback; `handle` answers each request. */
async function listen(handle: (req: IncomingMessage, res: ServerResponse) => void | Promise<void>): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    void Promise.resolve(handle(req, res)).catch((error: unknown) => res.writeHead(500).end(String(error)));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

/** What a gateway in front of `upstream` does to an answer: the request's path and query, and the upstream body. */
type Meddle = (path: string, body: Uint8Array, upstream: Response) => Promise<Uint8Array | { status: number; headers?: Record<string, string> }>;

/** A gateway that asks `upstream` and passes its answer through `meddle`; records what it was asked. */
async function gatewayInFront(upstream: string, meddle: Meddle): Promise<{ url: string; server: Server; asked: string[] }> {
  const asked: string[] = [];
  const { url, server } = await listen(async (req, res) => {
    asked.push(req.url!);
    const headers: Record<string, string> = {};
    for (const name of ['accept', 'authorization']) if (typeof req.headers[name] === 'string') headers[name] = req.headers[name];
    const answer = await fetch(`${upstream}${req.url}`, { headers, redirect: 'manual' });
    const body = new Uint8Array(await answer.arrayBuffer());
    if (answer.status !== 200) {
      res.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? 'text/plain' }).end(body);
      return;
    }
    const changed = await meddle(req.url!, body, answer);
    if (changed instanceof Uint8Array) res.writeHead(200, { 'content-type': answer.headers.get('content-type')! }).end(changed);
    else res.writeHead(changed.status, changed.headers ?? {}).end('changed by the gateway in front');
  });
  return { url, server, asked };
}

/** The blocks of a CAR, rewritten through `change` (which may drop a block by returning null), as a new CAR. */
async function rewriteCar(car: Uint8Array, change: (block: { cid: import('multiformats/cid').CID; bytes: Uint8Array }, index: number) => Uint8Array | null): Promise<Uint8Array> {
  const blocks = await CarBlockIterator.fromBytes(car);
  const { writer, out } = CarWriter.create(await blocks.getRoots());
  const chunks: Uint8Array[] = [];
  const collected = (async () => {
    for await (const chunk of out) chunks.push(chunk);
  })();
  let index = 0;
  for await (const block of blocks) {
    const bytes = change(block, index++);
    if (bytes !== null) await writer.put({ cid: block.cid, bytes });
  }
  await writer.close();
  await collected;
  return Buffer.concat(chunks);
}

function flipped(bytes: Uint8Array): Uint8Array {
  const copy = Uint8Array.from(bytes);
  copy[copy.length - 1]! ^= 0x01;
  return copy;
}

async function verify(args: string[], env: Record<string, string> = {}): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await verifyCommand(args, { out: (line) => out.push(line), err: (line) => err.push(line) }, { env });
  return { code, out, err };
}

describe('task-mgmt verify, against the app’s gateway handler', () => {
  let dir: string;
  let store: SqliteRunStore;
  let ipfs: EmbeddedIpfsStore;
  let app: { url: string; server: Server };
  const others: Server[] = [];

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'provenance-verify-'));
    store = await SqliteRunStore.open(':memory:');
    ipfs = new EmbeddedIpfsStore({ dataDir: join(dir, 'data') });
    const gateway = createIpfsGateway({
      blocks: ipfs,
      tokens: [serviceToken],
      log: pino({ level: 'silent' }),
      access: pinnedAccess({
        pins: store,
        reads: { canRead: async (requester) => requester.kind === 'service' },
        visibility: async (repo) => (repo.name === secret.name ? 'private' : 'public'),
        now: () => at(10),
      }),
    });
    app = await listen(async (req, res) => {
      if (!(await gateway(req, res))) res.writeHead(404).end();
    });
  });

  afterEach(async () => {
    for (const server of [app.server, ...others.splice(0)]) await new Promise((resolve) => server.close(resolve));
    await ipfs.close();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** A run of `repo` that wrote `files` (a folder `pages` too) and ended, with its outputs and record written as the worker writes them. */
  async function finishedRun(repo: RepoRef, files: Record<string, string>, fields: Partial<Parameters<typeof newRun>[0]> = {}): Promise<Run> {
    const created = await store.createRun(newRun({ repo, ...fields }), at(0));
    await store.claimRun(created.id, { workerId: 'w', leaseUntil: at(60), maxRunningInRepo: 5 }, at(1));
    const out = join(dir, created.id);
    await mkdir(join(out, 'pages'), { recursive: true });
    await writeFile(join(out, 'pages', 'index.html'), '<h1>archived</h1>\n');
    for (const [name, content] of Object.entries(files)) await writeFile(join(out, name), content);
    const pinnedUntil = at(3600);
    const { added } = await addAndPin({ store, ipfs, now: () => at(2) }, { runId: created.id, kind: 'outputs', path: out, pinnedUntil });
    const ending = { ...(await store.getRun(created.id))!, state: 'succeeded' as const, exitCode: 0, outputCid: added.cid, outputFiles: added.entries, finishedAt: at(3) };
    const provenanceCid = await writeProvenance({ store, now: () => at(3) }, ipfs, { run: ending, image: { id: 'sha256:' + 'e'.repeat(64), baseDigest: null }, pinnedUntil });
    return (await store.transition(created.id, 'succeed', at(3), { exitCode: 0, outputCid: added.cid, outputFiles: added.entries, provenanceCid }, { heldBy: 'w' }))!;
  }

  const sample = { 'report.txt': 'all good\n', 'data.csv': 'a,b\n1,2\n', 'big.bin': 'x'.repeat(600_000) };

  it('checks the record and every output, one line each, and exits 0', async () => {
    const run = await finishedRun(open, sample);
    const result = await verify([run.provenanceCid!, '--gateway', `${app.url}/ipfs/`]);
    expect(result.err).toEqual([]);
    expect(result.code).toBe(0);
    expect(result.out[0]).toMatch(new RegExp(`^ok +record +${run.provenanceCid} +octo-org/open#17 · snapshot \\(dockerfile\\) at aaaaaaaaaaaa · success · finished ${at(3).toISOString()}$`));
    expect(result.out[1]).toMatch(new RegExp(`^ok +outputs +${run.outputCid} +\\d+ blocks, [\\d,]+ bytes, each matching its CID; the DAG is complete$`));
    for (const file of run.outputFiles) expect(result.out).toContainEqual(expect.stringMatching(new RegExp(`^ok +${file.name} +${file.cid} +within the outputs' DAG`)));
    expect(result.out).toHaveLength(7);
    expect(result.out.at(-1)).toBe(`verified: the record and 5 outputs match their CIDs (through ${app.url}/ipfs/)`);
    // The check run's link to the record is a plain request: the gateway answers it with the record.
    const plain = await fetch(`${app.url}/ipfs/${run.provenanceCid}`);
    expect(plain.status).toBe(200);
    expect(plain.headers.get('content-type')).toBe('application/vnd.ipld.dag-json');
    expect(JSON.parse(await plain.text())).toMatchObject({ type: 'task-mgmt/provenance', outputs: { root: run.outputCid } });
  });

  it('checks the outputs of the tasks the run needed too, each as a whole DAG', async () => {
    const fetched = await finishedRun(open, { 'page.warc': 'W'.repeat(300_000) }, { task: 'fetch' });
    const run = await finishedRun(open, sample, { task: 'identify', needs: [fetched.id] });
    const result = await verify([run.provenanceCid!, '--gateway', app.url]);
    expect(result.err).toEqual([]);
    expect(result.out[1]).toMatch(new RegExp(`^ok +in/fetch +${fetched.outputCid} +\\d+ blocks, [\\d,]+ bytes, each matching its CID; the DAG is complete$`));
    expect(result.out[2]).toMatch(new RegExp(`^ok +outputs +${run.outputCid} `));
    expect(result.out.at(-1)).toBe(`verified: the record and 1 input and 5 outputs match their CIDs (through ${app.url}/ipfs/)`);
    expect(result.code).toBe(0);

    // A gateway that changes a block of the input, and only of the input.
    const liar = await gatewayInFront(app.url, async (path, body) => (path.startsWith(`/ipfs/${fetched.outputCid}?format=car`) ? rewriteCar(body, (block, i) => (i === 1 ? flipped(block.bytes) : block.bytes)) : body));
    others.push(liar.server);
    const lied = await verify([run.provenanceCid!, '--gateway', liar.url]);
    expect(lied.code).toBe(1);
    expect(lied.out[1]).toMatch(new RegExp(`^FAIL +in/fetch +${fetched.outputCid} +block \\S+ does not hash to its CID`));
    expect(lied.out[2]).toMatch(/^ok +outputs /);
    expect(lied.out.at(-1)).toMatch(/^NOT verified: 1 of 7 items did not hold/);
  });

  it('takes the gateway from IPFS_GATEWAY_URL, else PUBLIC_URL', async () => {
    const run = await finishedRun(open, sample);
    expect((await verify([run.provenanceCid!], { IPFS_GATEWAY_URL: app.url })).code).toBe(0);
    expect((await verify([run.provenanceCid!], { PUBLIC_URL: app.url })).code).toBe(0);
  });

  it('exits 1 when a gateway changes a byte of an output block, naming the block', async () => {
    const run = await finishedRun(open, sample);
    const liar = await gatewayInFront(app.url, async (path, body) => (path.includes('format=car') ? rewriteCar(body, (block, i) => (i === 1 ? flipped(block.bytes) : block.bytes)) : body));
    others.push(liar.server);
    const result = await verify([run.provenanceCid!, '--gateway', liar.url]);
    expect(result.code).toBe(1);
    expect(result.out[0]).toMatch(/^ok +record /);
    expect(result.out[1]).toMatch(new RegExp(`^FAIL +outputs +${run.outputCid} +block \\S+ does not hash to its CID: the gateway changed it, or sent another block$`));
    expect(result.out.at(-1)).toMatch(/^NOT verified: \d of \d items did not hold/);
  });

  it('exits 1, in one line, when a gateway changes a byte of the record', async () => {
    const run = await finishedRun(open, sample);
    const liar = await gatewayInFront(app.url, async (path, body) => (path.includes('format=raw') ? flipped(body) : body));
    others.push(liar.server);
    const result = await verify([run.provenanceCid!, '--gateway', liar.url]);
    expect(result.code).toBe(1);
    expect(result.out).toEqual([]);
    expect(result.err).toEqual([`task-mgmt verify: the bytes the gateway sent for ${run.provenanceCid} do not hash to that CID: it changed them, or it sent another block`]);
  });

  it('exits 1 when a block of an output is left out of the CAR: the DAG is incomplete', async () => {
    const run = await finishedRun(open, sample);
    const liar = await gatewayInFront(app.url, async (path, body) => (path.includes('format=car') ? rewriteCar(body, (block, i) => (i === 2 ? null : block.bytes)) : body));
    others.push(liar.server);
    const result = await verify([run.provenanceCid!, '--gateway', liar.url]);
    expect(result.code).toBe(1);
    expect(result.out[1]).toMatch(/^FAIL +outputs +\S+ +the CAR lacks 1 block of the DAG, \S+ among them: the outputs are not all there$/);
  });

  it('exits 1 for an output the gateway does not have, and still checks the others one by one', async () => {
    const run = await finishedRun(open, sample);
    const missing = await gatewayInFront(app.url, async (path, body) => (path.startsWith(`/ipfs/${run.outputCid}?`) ? { status: 404 } : body));
    others.push(missing.server);
    const result = await verify([run.provenanceCid!, '--gateway', missing.url]);
    expect(result.code).toBe(1);
    expect(result.out[1]).toMatch(new RegExp(`^FAIL +outputs +${run.outputCid} +the gateway at ${missing.url} answered 404 .*: it does not have ${run.outputCid}, or no longer pins it`));
    for (const file of run.outputFiles) expect(result.out).toContainEqual(expect.stringMatching(new RegExp(`^ok +${file.name} +${file.cid} +\\d+ blocks?, `)));
    expect(result.out.at(-1)).toBe(`NOT verified: 1 of 6 items did not hold (through ${missing.url}/ipfs/)`);
  });

  it('asks nothing but the gateway: a redirect is refused, not followed', async () => {
    const run = await finishedRun(open, sample);
    const elsewhere = await listen((_req, res) => void res.writeHead(500).end('must not be asked'));
    others.push(elsewhere.server);
    const redirecting = await gatewayInFront(app.url, async (path, body) => (path.includes('format=car') ? { status: 302, headers: { location: `${elsewhere.url}${path}` } } : body));
    others.push(redirecting.server);
    let askedElsewhere = 0;
    elsewhere.server.on('request', () => (askedElsewhere += 1));
    const result = await verify([run.provenanceCid!, '--gateway', redirecting.url]);
    expect(result.code).toBe(1);
    expect(result.out[1]).toMatch(/answered 302 .*: redirects are not followed, only this gateway is asked$/);
    expect(askedElsewhere).toBe(0);
  });

  it('says in one line that the gateway cannot be reached, or has no such record', async () => {
    const closed = await freePort();
    const unreachable = await verify(['baguqeera26r2jhliih57scwm2ob3kkyc426bf4dh4y7mpfiyshqbqzuoqjua', '--gateway', `http://127.0.0.1:${closed}`]);
    expect(unreachable).toEqual({ code: 1, out: [], err: [`task-mgmt verify: cannot reach the gateway at http://127.0.0.1:${closed}: ECONNREFUSED`] });
    const unknown = await verify(['baguqeera26r2jhliih57scwm2ob3kkyc426bf4dh4y7mpfiyshqbqzuoqjua', '--gateway', app.url]);
    expect(unknown.code).toBe(1);
    expect(unknown.err).toHaveLength(1);
    expect(unknown.err[0]).toMatch(/^task-mgmt verify: the gateway at \S+ answered 404 .*: it does not have baguqeera26r2jhliih57scwm2ob3kkyc426bf4dh4y7mpfiyshqbqzuoqjua, or no longer pins it; if it is the app and the run is a private repository's, set TASK_MGMT_TOKEN/);
  });

  it.each([
    [[], /^task-mgmt verify: give the CID of a provenance record/],
    [['not-a-cid'], /^task-mgmt verify: "not-a-cid" is not a CID$/],
    [['QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o'], /names a dag-pb block, not a provenance record/],
    [['baguqeera26r2jhliih57scwm2ob3kkyc426bf4dh4y7mpfiyshqbqzuoqjua'], /^task-mgmt verify: no gateway: pass --gateway URL, or set IPFS_GATEWAY_URL or PUBLIC_URL$/],
    [['baguqeera26r2jhliih57scwm2ob3kkyc426bf4dh4y7mpfiyshqbqzuoqjua', '--gateway', 'file:///etc'], /--gateway must be an http\(s\) address/],
    [['baguqeera26r2jhliih57scwm2ob3kkyc426bf4dh4y7mpfiyshqbqzuoqjua', '--nope'], /Unknown option '--nope'/],
  ])('refuses %j with a usage error, exit 2', async (args, message) => {
    const result = await verify(args);
    expect(result.code).toBe(2);
    expect(result.err).toHaveLength(1);
    expect(result.err[0]).toMatch(message);
  });

  it("a private repository's run: TASK_MGMT_TOKEN goes to the app's own gateway, and to no other", async () => {
    const run = await finishedRun(secret, sample);
    expect((await verify([run.provenanceCid!, '--gateway', app.url])).code).toBe(1);
    const withToken = await verify([run.provenanceCid!, '--gateway', app.url], { TASK_MGMT_TOKEN: serviceToken, TASK_MGMT_URL: app.url });
    expect(withToken.code).toBe(0);
    // A gateway that is not the app's gets no token, even when it is the one asked.
    const other = await gatewayInFront(app.url, async (_path, body) => body);
    others.push(other.server);
    const seen: (string | undefined)[] = [];
    other.server.prependListener('request', (req: IncomingMessage) => seen.push(req.headers.authorization));
    expect((await verify([run.provenanceCid!, '--gateway', other.url], { TASK_MGMT_TOKEN: serviceToken, TASK_MGMT_URL: app.url })).code).toBe(1);
    expect(seen).toEqual([undefined]);
  });
});

const dockerReady = await requireServices('docker');

describe.skipIf(!dockerReady)('a run of the app, verified by task-mgmt verify', () => {
  let gh: FakeGitHub;
  let appProcess: AppProcess;
  let liar: { url: string; server: Server } | undefined;

  beforeAll(async () => {
    gh = await FakeGitHub.start();
    appProcess = await startApp(gh, { API_TOKENS: serviceToken, WORKERS: '1' });
  });

  afterAll(async () => {
    if (liar) await new Promise((resolve) => liar!.server.close(resolve));
    await appProcess?.stop();
    await gh?.close();
  });

  /** `node bin/task-mgmt.js verify …`, as a user runs it. */
  function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      const child = spawn(process.execPath, [join(projectRoot, 'bin', 'task-mgmt.js'), 'verify', ...args], {
        cwd: tmpdir(),
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      child.on('exit', (code) => resolve({ code, stdout, stderr }));
    });
  }

  it('names the record in the check run and the API, and verify accepts it through the app and refuses a gateway that changes a byte', { timeout: 120_000 }, async () => {
    const repo = await gh.createRepo({
      owner: 'octo-org',
      name: `provenance-${randomUUID().slice(0, 8)}`,
      files: { Dockerfile: 'FROM busybox\nCMD printf "hello world\\n" > /out/hello.txt && mkdir /out/pages && echo "<h1>archived</h1>" > /out/pages/index.html\n' },
    });
    gh.setRole(repo, 'maintainer', 'maintain');
    const issue = gh.createIssue(repo, { author: 'maintainer', title: 'archive it' });
    await gh.comment(repo, issue, 'maintainer', '/run');
    const check = await gh.waitFor(() => gh.checkRuns(repo).find((c) => c.status === 'completed'), { timeoutMs: 90_000, message: `no check run completed\n${appProcess.output().slice(-3000)}` });
    expect(check.conclusion, check.output.summary ?? '').toBe('success');

    const line = (check.output.summary ?? '').split('\n').find((text) => text.startsWith('Provenance'));
    const cid = /^Provenance: `(baguqeera[a-z2-7]+)`/.exec(line ?? '')?.[1];
    expect(cid, check.output.summary ?? '').toBeDefined();
    const run = (await (await fetch(`${appProcess.url}/api/runs/${check.externalId}`, { headers: { authorization: `Bearer ${serviceToken}` } })).json()) as { provenance_cid: string; output_cid: string };
    expect(run.provenance_cid).toBe(cid);

    const good = await cli([cid!, '--gateway', appProcess.url]);
    expect(good.stderr).toBe('');
    expect(good.code, good.stdout).toBe(0);
    expect(good.stdout).toContain(`ok    outputs      ${run.output_cid}`);
    expect(good.stdout.trimEnd().split('\n').at(-1)).toBe(`verified: the record and 3 outputs match their CIDs (through ${appProcess.url}/ipfs/)`);

    const front = await gatewayInFront(appProcess.url, async (path, body) => (path.includes('format=car') ? rewriteCar(body, (block, i) => (i === 0 ? flipped(block.bytes) : block.bytes)) : body));
    liar = front;
    const bad = await cli([cid!, '--gateway', front.url]);
    expect(bad.code, bad.stdout + bad.stderr).toBe(1);
    expect(bad.stdout).toMatch(/^FAIL +outputs +\S+ +block \S+ does not hash to its CID/m);
    expect(bad.stdout.trimEnd().split('\n').at(-1)).toMatch(/^NOT verified: /);
  });
});
