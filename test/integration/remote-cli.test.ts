/** `task-mgmt runs | logs | cancel` (src/cli/remote.ts) against the real JSON API handler and run service, on SQLite in memory. */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { at, newRun } from '../contracts/run-store.contract.js';
import { createApiHandler } from '../../src/adapters/http/api-handler.js';
import { RunRequests } from '../../src/adapters/http/run-requests.js';
import { MemoryCheckReporter } from '../../src/adapters/local/memory-check-reporter.js';
import { MemoryRepoHost } from '../../src/adapters/local/memory-repo-host.js';
import { EmbeddedRunQueue } from '../../src/adapters/queue/embedded-run-queue.js';
import { SqliteRunStore } from '../../src/adapters/store/sqlite-run-store.js';
import type { TaskTypeCatalog } from '../../src/core/manifest/load-manifest.js';
import { RunService } from '../../src/core/run-service/run-service.js';
import type { RepoRef, Run } from '../../src/core/runs/run.js';
import { remoteCommand, type RemoteCommand } from '../../src/cli/remote.js';

const silent = pino({ level: 'silent' });
const token = 'service-token-for-the-cli';
const repo: RepoRef = { owner: 'octo-org', name: 'archive', installationId: 7 };

describe('task-mgmt runs, logs and cancel', () => {
  let store: SqliteRunStore;
  let queue: EmbeddedRunQueue;
  let server: Server;
  let url: string;
  let first: Run;
  let second: Run;

  beforeEach(async () => {
    store = await SqliteRunStore.open(':memory:');
    queue = new EmbeddedRunQueue({ store, log: silent });
    const runs = new RunService({
      store,
      queue,
      checks: new MemoryCheckReporter(),
      hostFor: async () => new MemoryRepoHost().setRole('reader', 'read'),
      newId: () => 'unused',
      now: () => new Date(),
      gatewayUrl: 'https://gateway.example',
      commandsPerMinute: 100,
      taskTypes: new Map() as unknown as TaskTypeCatalog,
      defaultImage: 'busybox:latest',
    });
    const api = createApiHandler({
      store,
      tokens: [token],
      runs: new RunRequests({ runs, installationOf: async () => 7 }),
      reads: runs,
      resolveUser: async (given) => (given === 'reader-token' ? 'reader' : null),
      log: silent,
      pollMs: 20,
    });
    server = createServer((req, res) => void api(req, res).then((handled) => handled || res.writeHead(404).end()));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    first = await store.createRun(newRun({ repo, task: 'snapshot', number: 12 }), at(1));
    second = await store.createRun(newRun({ repo, task: 'publish', number: null, isPullRequest: false }), at(2));
    await store.transition(second.id, 'claim', at(3), { workerId: 'w' });
    await store.appendLog(second.id, { offset: 0, bytes: Buffer.from('line one\nline two\n') }, 1024 * 1024);
  });

  afterEach(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await queue.close();
    await store.close();
  });

  async function cli(command: RemoteCommand, argv: string[], env: Record<string, string> = { TASK_MGMT_URL: url, TASK_MGMT_TOKEN: token }, signal?: AbortSignal) {
    let out = '';
    const err: string[] = [];
    const code = await remoteCommand(command, argv, { out: (text) => (out += text), err: (line) => err.push(line) }, { env, ...(signal ? { signal } : {}) });
    return { code, out, err };
  }

  it('lists runs newest first, filters them, and prints the API’s JSON with --json', async () => {
    const all = await cli('runs', []);
    expect(all.code).toBe(0);
    const lines = all.out.trimEnd().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(new RegExp(`^${second.id}  running    octo-org/archive  publish  `));
    expect(lines[1]).toMatch(new RegExp(`^${first.id}  queued     octo-org/archive#12  snapshot  `));
    const running = await cli('runs', ['--state', 'running', '--json']);
    expect((JSON.parse(running.out) as { runs: { id: string }[] }).runs.map((run) => run.id)).toStrictEqual([second.id]);
    const bad = await cli('runs', ['--state', 'sleeping']);
    expect(bad.code).toBe(1);
    expect(bad.err).toHaveLength(1);
    expect(bad.err[0]).toMatch(/^task-mgmt runs: .*state/);
  });

  it('follows the runs that change until interrupted', async () => {
    const stop = new AbortController();
    const lines: string[] = [];
    const following = remoteCommand('runs', ['--follow', '--json'], { out: (text) => lines.push(...text.trimEnd().split('\n')), err: () => undefined }, {
      env: { TASK_MGMT_URL: url, TASK_MGMT_TOKEN: token },
      signal: stop.signal,
    });
    // The stream reports changes after it opened: keep changing the run until one is reported.
    await new Promise((resolve) => setTimeout(resolve, 200));
    await store.transition(second.id, 'succeed', new Date(), { exitCode: 0 });
    for (let i = 0; i < 250 && lines.length < 2; i += 1) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      if (i % 50 === 49) await store.updateRun(second.id, { logTail: `tail ${i}` }, new Date());
    }
    stop.abort();
    expect(await following).toBe(0);
    const event = JSON.parse(lines[1]!) as { event: string; run: { id: string; state: string } };
    expect(event).toMatchObject({ event: 'run.succeeded', run: { id: second.id, state: 'succeeded' } });
  });

  it('prints a run’s log, follows it to the run’s end, and as JSON lines', async () => {
    expect((await cli('logs', [second.id])).out).toBe('line one\nline two\n');
    const following = cli('logs', [second.id, '--follow']);
    await new Promise((resolve) => setTimeout(resolve, 60));
    await store.appendLog(second.id, { offset: 18, bytes: Buffer.from('line three\n') }, 1024 * 1024);
    await store.transition(second.id, 'fail', new Date(), { exitCode: 1 });
    expect((await following).out).toBe('line one\nline two\nline three\n');
    expect((await cli('logs', [second.id, '--json'])).out).toBe('{"line":"line one"}\n{"line":"line two"}\n{"line":"line three"}\n');
    const missing = await cli('logs', ['nope']);
    expect(missing).toMatchObject({ code: 1, err: ['task-mgmt logs: there is no run `nope`'] });
  });

  it('cancels through the policy, and says why in one line when it may not', async () => {
    const refused = await cli('cancel', [first.id], { TASK_MGMT_URL: url, TASK_MGMT_TOKEN: 'reader-token' });
    expect(refused).toMatchObject({ code: 1, out: '' });
    expect(refused.err).toStrictEqual(['task-mgmt cancel: @reader has the read role on this repository; cancelling runs needs write or higher.']);
    const done = await cli('cancel', [first.id]);
    expect(done).toMatchObject({ code: 0, out: `cancelled ${first.id} (octo-org/archive snapshot)\n` });
    expect((await store.getRun(first.id))!.state).toBe('cancelled');
    const again = await cli('cancel', [first.id, '--json']);
    expect(again.code).toBe(1);
    expect(again.err[0]).toMatch(/has already ended \(cancelled\)/);
  });

  it('says what is missing, in one line, without a URL or token, or when the app cannot be reached', async () => {
    expect(await cli('runs', [], {})).toMatchObject({ code: 2, err: [expect.stringMatching(/^task-mgmt runs: set TASK_MGMT_URL/)] });
    expect(await cli('runs', [], { TASK_MGMT_URL: url })).toMatchObject({ code: 2, err: [expect.stringMatching(/^task-mgmt runs: set TASK_MGMT_TOKEN/)] });
    expect(await cli('logs', [])).toMatchObject({ code: 2, err: ['task-mgmt logs: give one run id'] });
    expect(await cli('runs', ['--colour'])).toMatchObject({ code: 2 });
    expect(await cli('runs', [], { TASK_MGMT_URL: url, TASK_MGMT_TOKEN: 'wrong' })).toMatchObject({ code: 1, err: ['task-mgmt runs: the bearer token is not valid'] });
    const closed = await cli('runs', [], { TASK_MGMT_URL: 'http://127.0.0.1:1', TASK_MGMT_TOKEN: token });
    expect(closed.code).toBe(1);
    expect(closed.err).toHaveLength(1);
    expect(closed.err[0]).toMatch(/^task-mgmt runs: could not reach http:\/\/127\.0\.0\.1:1: /);
  });
});
