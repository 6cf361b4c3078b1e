/**
 * A pull request's manifest is untrusted, and the run service reads it on every push and every
 * `/run`. A parameter pattern that backtracks catastrophically in JavaScript's RegExp must not
 * stall either: both answer in well under a second, on in-memory adapters as in
 * run-service.test.ts.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryCheckReporter } from '../../adapters/local/memory-check-reporter.js';
import { MemoryRepoHost } from '../../adapters/local/memory-repo-host.js';
import { EmbeddedRunQueue } from '../../adapters/queue/embedded-run-queue.js';
import { SqliteRunStore } from '../../adapters/store/sqlite-run-store.js';
import type { TaskTypeCatalog } from '../manifest/load-manifest.js';
import type { RepoRef } from '../runs/run.js';
import { RunService } from './run-service.js';

const repo: RepoRef = { owner: 'octo-org', name: 'archive', installationId: 7 };
const silent = { info: () => undefined, warn: () => undefined, error: () => undefined, debug: () => undefined, child: () => silent } as never;
const dockerfile = { Dockerfile: 'FROM busybox\nCMD ["true"]\n' };
/** `(a+)+$` against thirty `a`s and a `!` blocked the event loop for over a minute with RegExp. */
const evil = `${'a'.repeat(30)}!`;
const manifest = (param: string) => `version: 1\ntasks:\n  build:\n    dockerfile: Dockerfile\n    params:\n      p: { ${param} }\n`;

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

async function world() {
  const host = new MemoryRepoHost();
  host.setRole('alice', 'write');
  const store = await SqliteRunStore.open(':memory:');
  const queue = new EmbeddedRunQueue({ store, log: silent });
  let next = 0;
  let clock = Date.parse('2026-12-01T10:00:00Z');
  const runs = new RunService({
    store,
    queue,
    checks: new MemoryCheckReporter(),
    hostFor: async () => host,
    newId: () => `run-${++next}`,
    now: () => new Date((clock += 10)),
    gatewayUrl: 'https://gateway.example',
    commandsPerMinute: 100,
    taskTypes: new Map() as TaskTypeCatalog,
    defaultImage: 'busybox:latest',
  });
  closers.push(async () => {
    await queue.close();
    await store.close();
  });
  host.setDefaultHead(host.commit(dockerfile));
  return { host, store, runs };
}

/** The answer of `work` and the longest the event loop was blocked meanwhile, in ms. */
async function timed<T>(work: () => Promise<T>): Promise<{ answer: T; blockedMs: number; tookMs: number }> {
  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
  const started = performance.now();
  const answer = await work();
  const tookMs = performance.now() - started;
  await new Promise((resolve) => setTimeout(resolve, 30));
  delay.disable();
  return { answer, blockedMs: delay.max / 1e6, tookMs };
}

describe('a manifest with a catastrophic parameter pattern', () => {
  it('pushed(): a push whose manifest has the pattern and a default it cannot match is answered at once, and the older run cancelled', async () => {
    const w = await world();
    const first = w.host.commit({ ...dockerfile, 'notes.md': 'v1\n' });
    w.host.openPullRequest({ number: 1, author: 'alice', headSha: first, changedFiles: ['notes.md'] });
    const outcome = await w.runs.request({ requester: { kind: 'user', login: 'alice' }, repo, target: { kind: 'pull_request', number: 1 }, task: null, params: {}, trigger: 'comment' });
    expect(outcome.kind).toBe('queued');

    const head = w.host.commit({ ...dockerfile, 'task-mgmt.yml': manifest(`pattern: "(a+)+$", default: "${evil}"`) });
    w.host.push(1, head);
    const { answer, blockedMs, tookMs } = await timed(() => w.runs.pushed({ repo, number: 1, headSha: head }));
    // A manifest that does not load cancels on push, as `cancel_on_push` defaults to true.
    expect(answer.cancelled).toHaveLength(1);
    expect(blockedMs).toBeLessThan(1000);
    // The first manifest a process reads starts its parsing worker; the loop stays free meanwhile.
    expect(tookMs).toBeLessThan(5000);
  });

  it('request(): a `/run` value the pattern would backtrack on is refused at once, naming the parameter', async () => {
    const w = await world();
    w.host.setDefaultHead(w.host.commit({ ...dockerfile, 'task-mgmt.yml': manifest('pattern: "(a+)+$"') }));
    const { answer, blockedMs, tookMs } = await timed(() =>
      w.runs.request({ requester: { kind: 'user', login: 'alice' }, repo, target: { kind: 'issue', number: 1 }, task: null, params: { p: evil }, trigger: 'comment' }),
    );
    expect(answer).toMatchObject({ kind: 'refused', code: 'params', reason: expect.stringMatching(/^parameter `p` of `build` must match/) });
    expect(await w.store.listQueued(10)).toEqual([]);
    expect(blockedMs).toBeLessThan(1000);
    // The first manifest a process reads starts its parsing worker; the loop stays free meanwhile.
    expect(tookMs).toBeLessThan(5000);
  });
});
