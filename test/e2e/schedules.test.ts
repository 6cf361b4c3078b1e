/**
 * Schedules end to end through the missed-firing path: the real app process, the fake GitHub, and
 * the app's own run store in DATA_DIR. The store is made to remember a firing long ago (as if the
 * app had been down since), so a schedule every minute is due when the app starts: it fires once
 * at start-up, as the App, on the default branch's HEAD, with a check run like `/run` on an issue;
 * no test waits for a minute to pass. No worker runs (WORKERS=0): the run stays queued.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeGitHub } from '../fake-github/index.js';
import { startApp, type AppProcess } from '../support/app-process.js';
import { SqliteRunStore } from '../../src/adapters/store/sqlite-run-store.js';
import { scheduleLeaseName } from '../../src/core/run-service/run-service.js';

describe('schedules', () => {
  let gh: FakeGitHub;
  let app: AppProcess | undefined;
  let dataDir: string;

  beforeAll(async () => {
    gh = await FakeGitHub.start();
    dataDir = await mkdtemp(join(tmpdir(), 'task-mgmt-schedules-'));
  });

  afterAll(async () => {
    await app?.stop();
    await gh?.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('a schedule due while the app was down fires once when it starts, as the App, at the default branch HEAD', async () => {
    const manifest = 'version: 1\ntasks:\n  nightly:\n    dockerfile: Dockerfile\n    schedule: ["* * * * *"]\n  other:\n    dockerfile: Dockerfile\n';
    const repo = await gh.createRepo({ owner: 'octo-org', name: `sched-${randomUUID().slice(0, 8)}`, files: { 'task-mgmt.yml': manifest, Dockerfile: 'FROM busybox\nCMD true\n' } });
    const head = gh.headOf(repo, 'main');

    // The app's store remembers a firing two hours ago, covered until the slot after it: every slot since was missed.
    const store = await SqliteRunStore.open(join(dataDir, 'task-mgmt.sqlite'));
    const longAgo = new Date(Date.now() - 2 * 3_600_000);
    const name = scheduleLeaseName({ repo: { owner: 'octo-org', name: repo.name, installationId: gh.installationId }, task: 'nightly', cron: '* * * * *', timezone: 'UTC' });
    expect(await store.takeLease(name, 'fired:long-ago', new Date(longAgo.getTime() + 60_000), longAgo)).toBe(true);
    await store.close();

    app = await startApp(gh, { DATA_DIR: dataDir, WORKERS: '0' });
    const check = await gh.waitFor(() => gh.checkRuns(repo, { headSha: head })[0], { timeoutMs: 20_000, message: `no check run\n${app?.output().slice(-3000)}` });
    expect(check.name).toBe('task-mgmt / nightly');
    // One firing for 120 missed slots, and only the scheduled task.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(gh.checkRuns(repo).map((c) => c.name)).toEqual(['task-mgmt / nightly']);
    expect(app.output()).toContain('scheduled run of nightly queued');

    await app.stop();
    app = undefined;
    const after = await SqliteRunStore.open(join(dataDir, 'task-mgmt.sqlite'));
    const runs = await after.listRuns({ repo: `octo-org/${repo.name}` });
    await after.close();
    expect(runs).toMatchObject([{ task: 'nightly', trigger: 'schedule', requesterKind: 'app', number: null, sha: head, state: 'queued' }]);
  });
});
