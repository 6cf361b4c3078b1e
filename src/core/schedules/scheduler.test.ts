/**
 * Schedules on a fake clock: the real run service on in-memory adapters and a real SQLite run
 * store (its named leases make one firing per slot), so no test waits for a minute to pass.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryCheckReporter } from '../../adapters/local/memory-check-reporter.js';
import { MemoryRepoHost } from '../../adapters/local/memory-repo-host.js';
import { EmbeddedRunQueue } from '../../adapters/queue/embedded-run-queue.js';
import { SqliteRunStore } from '../../adapters/store/sqlite-run-store.js';
import { parseManifest, type TaskTypeCatalog } from '../manifest/load-manifest.js';
import { OrgPolicies } from '../policy/org-policies.js';
import type { RepoRef } from '../runs/run.js';
import { checkBeforeStart, RunService } from '../run-service/run-service.js';
import { lastFiring, nextFiring, shortestInterval } from './cron.js';
import { Scheduler } from './scheduler.js';

const repo: RepoRef = { owner: 'octo-org', name: 'archive', installationId: 7 };
const silent = { info: () => undefined, warn: () => undefined, error: () => undefined, debug: () => undefined, child: () => silent } as never;
const catalog = new Map() as unknown as TaskTypeCatalog;
const manifest = (schedule: string) => `version: 1\ntasks:\n  nightly:\n    dockerfile: Dockerfile\n    schedule: ${schedule}\n  other:\n    dockerfile: Dockerfile\n`;

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

async function world(options: { schedule?: string; org?: string } = {}) {
  let clock = Date.parse('2026-12-07T02:59:00Z');
  const now = () => new Date(clock);
  const host = new MemoryRepoHost();
  const main = host.commit({ 'task-mgmt.yml': manifest(options.schedule ?? '["0 3 * * *"]'), Dockerfile: 'FROM busybox\n' });
  host.setDefaultHead(main);
  const orgHost = new MemoryRepoHost();
  const setOrg = (text: string) => orgHost.setDefaultHead(orgHost.commit({ '.github/task-mgmt.yml': text }));
  orgHost.setDefaultHead(orgHost.commit(options.org ? { '.github/task-mgmt.yml': options.org } : { 'README.md': 'org\n' }));
  const hostFor = async (r: RepoRef) => (r.name === '.github' ? orgHost : host);
  const store = await SqliteRunStore.open(':memory:');
  const queue = new EmbeddedRunQueue({ store, log: silent });
  const checks = new MemoryCheckReporter();
  let next = 0;
  const runs = new RunService({
    store,
    queue,
    checks,
    hostFor,
    newId: () => `run-${++next}`,
    now,
    gatewayUrl: 'https://gateway.example',
    commandsPerMinute: 10,
    taskTypes: catalog,
    defaultImage: 'busybox:latest',
    orgPolicies: new OrgPolicies({ hostFor, store, now, ttlMs: 0 }),
  });
  closers.push(async () => {
    await queue.close();
    await store.close();
  });
  const scheduler = (name: string) =>
    new Scheduler({ request: (r) => runs.request(r), leases: store, hostFor, listRepos: async () => [repo], taskTypes: catalog, defaultImage: 'busybox:latest', now, appLogin: `task-mgmt[bot]-${name}` });
  return {
    host,
    main,
    setOrg,
    hostFor,
    orgPolicies: new OrgPolicies({ hostFor, now, ttlMs: 0 }),
    store,
    checks,
    scheduler,
    at: (iso: string) => {
      clock = Date.parse(iso);
    },
  };
}

describe('cron expressions', () => {
  it('a bad one is a manifest error naming the line and the field', () => {
    const result = parseManifest(manifest('["0 3 * *", { cron: "0 3 * * *", timezone: "Mars/Olympus" }]'), catalog);
    expect(result.ok).toBe(false);
    const errors = result.ok ? [] : result.errors;
    expect(errors).toMatchObject([
      { line: 5, field: 'tasks.nightly.schedule.0', message: expect.stringContaining('has 4 fields') },
      { line: 5, field: 'tasks.nightly.schedule.1', message: expect.stringContaining('`Mars/Olympus` is not a time zone') },
    ]);
  });

  it('fire in their time zone, and their shortest interval is known', () => {
    const paris = { cron: '0 3 * * 1', timezone: 'Europe/Paris' };
    expect(nextFiring(paris, new Date('2026-12-02T22:00:00Z')).toISOString()).toBe('2026-12-07T02:00:00.000Z');
    expect(lastFiring({ cron: '0 3 * * *', timezone: 'UTC' }, new Date('2026-12-07T03:00:00Z')).toISOString()).toBe('2026-12-07T03:00:00.000Z');
    expect(shortestInterval({ cron: '*/15 * * * *', timezone: 'UTC' }, new Date('2026-12-07T00:00:00Z'))).toBe(15 * 60_000);
  });
});

describe('scheduler', () => {
  it('fires a schedule once when due, as the App at the default branch HEAD, across two replicas', async () => {
    const w = await world();
    const [a, b] = [w.scheduler('a'), w.scheduler('b')];
    expect(await a.loadAll()).toBe(1);
    await b.loadAll();
    // Not due yet.
    expect(await a.tick()).toEqual([]);
    w.at('2026-12-07T03:00:05Z');
    const [first, second] = await Promise.all([a.tick(), b.tick()]);
    const firings = [...first, ...second];
    expect(firings).toHaveLength(1);
    expect(firings[0]!.outcome).toMatchObject({ kind: 'queued', runs: [{ task: 'nightly', trigger: 'schedule', requesterKind: 'app', number: null, sha: w.main }] });
    // The same slot never fires twice, on either replica.
    w.at('2026-12-07T03:00:40Z');
    expect([...(await a.tick()), ...(await b.tick())]).toEqual([]);
    // The next day's slot does.
    w.at('2026-12-08T03:00:00Z');
    expect(await b.tick()).toHaveLength(1);
    expect(w.checks.list({ sha: w.main }).map((check) => check.task)).toEqual(['nightly', 'nightly']);
  });

  it('a firing missed while down runs once at start-up, not once per missed slot; a new schedule does not fire for the past', async () => {
    const w = await world({ schedule: '["*/10 * * * *"]' });
    const before = w.scheduler('before');
    await before.loadAll();
    expect(await before.tick()).toEqual([]);
    // Down for an hour and a half: nine slots missed.
    w.at('2026-12-07T04:31:00Z');
    const after = w.scheduler('after');
    await after.loadAll();
    expect(await after.tick()).toHaveLength(1);
    expect(await after.tick()).toEqual([]);
  });

  it('a push that removes the task removes its schedule; one that changes it registers the new one', async () => {
    const w = await world();
    const s = w.scheduler('a');
    await s.loadAll();
    w.host.setDefaultHead(w.host.commit({ 'task-mgmt.yml': 'version: 1\ntasks:\n  other:\n    dockerfile: Dockerfile\n', Dockerfile: 'FROM busybox\n' }));
    expect(await s.load(repo)).toEqual([]);
    w.at('2026-12-07T03:00:05Z');
    expect(await s.tick()).toEqual([]);
    w.host.setDefaultHead(w.host.commit({ 'task-mgmt.yml': manifest('[{ cron: "30 3 * * *", timezone: "UTC" }]'), Dockerfile: 'FROM busybox\n' }));
    expect(await s.load(repo)).toMatchObject([{ task: 'nightly', cron: '30 3 * * *' }]);
    w.at('2026-12-07T03:30:00Z');
    expect(await s.tick()).toHaveLength(1);
  });

  it('the org policy may forbid schedules or set the shortest interval; the refusal is in the audit log', async () => {
    const forbidden = await world({ org: 'version: 1\nallow: { schedules: false }\n' });
    const s = forbidden.scheduler('a');
    await s.loadAll();
    forbidden.at('2026-12-07T03:00:00Z');
    const [firing] = await s.tick();
    expect(firing!.outcome).toMatchObject({ kind: 'refused', code: 'org_policy', reason: expect.stringContaining('`allow.schedules`') });
    expect((await forbidden.store.listAudit('octo-org/archive')).at(-1)).toMatchObject({ allowed: false, reason: expect.stringContaining('scheduled runs are forbidden') });

    const often = await world({ schedule: '["*/5 * * * *"]', org: 'version: 1\nlimits: { schedule_every: 1h }\n' });
    const t = often.scheduler('a');
    await t.loadAll();
    often.at('2026-12-07T03:05:00Z');
    const [tooOften] = await t.tick();
    expect(tooOften!.outcome).toMatchObject({ kind: 'refused', code: 'org_policy', reason: expect.stringMatching(/fires every 5 min; `limits.schedule_every` .* at most once every 1 h/) });
  });

  it('the worker\'s re-check refuses a scheduled run whose default branch moved, or that the org policy now forbids', async () => {
    const w = await world();
    const s = w.scheduler('a');
    await s.loadAll();
    w.at('2026-12-07T03:00:00Z');
    const [firing] = await s.tick();
    const run = firing!.outcome.kind === 'queued' ? firing!.outcome.runs[0]! : undefined;
    expect(run).toBeDefined();
    expect(await checkBeforeStart(w.host, run!, w.orgPolicies)).toMatchObject({ allowed: true, note: expect.stringContaining('is still the head of main') });
    w.setOrg('version: 1\nallow: { types: [procfile] }\n');
    expect(await checkBeforeStart(w.host, run!, w.orgPolicies)).toMatchObject({ allowed: false, reason: expect.stringContaining('`allow.types`') });
    w.setOrg('version: 1\n');
    w.host.setDefaultHead(w.host.commit({ 'task-mgmt.yml': manifest('["0 3 * * *"]'), Dockerfile: 'FROM busybox\n', 'NEWS.md': 'moved\n' }));
    expect(await checkBeforeStart(w.host, run!, w.orgPolicies)).toMatchObject({ allowed: false, reason: expect.stringMatching(/main moved from .* before the scheduled task started; nothing ran/) });
  });
});
