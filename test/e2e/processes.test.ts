/**
 * The app as an operator runs it: the setup flow without APP_ID, a backlog that survives a
 * restart, and workers in separate processes.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FakeGitHub, type Repo } from '../fake-github/index.js';
import { requireServices } from '../support/services.js';
import { createTestDatabase } from '../support/postgres.js';
import { freePort, projectRoot, startApp, type AppProcess } from '../support/app-process.js';

const dockerfile = 'FROM busybox\nCMD printf "hello world\\n" > /out/hello.txt\n';

describe('npm start without APP_ID', () => {
  it('serves Probot\'s setup flow, which registers the app from app.yml', async () => {
    const port = await freePort();
    const child = spawn(process.execPath, [join(projectRoot, 'bin', 'task-mgmt.js')], {
      cwd: projectRoot,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn' },
      stdio: 'ignore',
    });
    try {
      let page = '';
      // Up to 30 s: a loaded machine starts Probot's setup flow slowly.
      for (let i = 0; i < 300 && !page; i += 1) {
        try {
          const response = await fetch(`http://127.0.0.1:${port}/probot`);
          if (response.ok) page = await response.text();
        } catch {
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      expect(page).toContain('Register GitHub App');
      // The registration form carries the manifest built from app.yml.
      expect(page).toContain('task-mgmt');
      expect(page).toContain('issue_comment');
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('refuses to start with APP_ID set and WEBHOOK_SECRET unset, naming the variable', async () => {
    const child = spawn(process.execPath, [join(projectRoot, 'bin', 'task-mgmt.js'), 'serve'], {
      cwd: projectRoot,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', APP_ID: '123', PRIVATE_KEY: 'x' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    expect(code).not.toBe(0);
    expect(output).toMatch(/WEBHOOK_SECRET is required when APP_ID is set/);
  });
});

describe('task-mgmt add', () => {
  it('prints the CID `ipfs add -r -Q` prints, through the installed command', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'task-mgmt-add-'));
    try {
      await mkdir(join(dir, 'folder'));
      await writeFile(join(dir, 'folder', 'hello.txt'), 'hello world\n');
      const run = (args: string[]) =>
        new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
          const child = spawn(process.execPath, [join(projectRoot, 'bin', 'task-mgmt.js'), 'add', ...args], {
            cwd: dir,
            env: { PATH: process.env.PATH ?? '/usr/bin:/bin', DATA_DIR: join(dir, 'data') },
            stdio: ['ignore', 'pipe', 'pipe'],
          });
          let stdout = '';
          let stderr = '';
          child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
          child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
          child.once('exit', (code) => resolve({ code, stdout, stderr }));
        });
      expect(await run(['-Q', join(dir, 'folder', 'hello.txt')])).toMatchObject({ code: 0, stdout: 'QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o\n' });
      const folder = await run(['-r', 'folder']);
      expect(folder.code).toBe(0);
      expect(folder.stdout).toContain('added QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o folder/hello.txt');
      const refused = await run(['folder']);
      expect(refused.code).not.toBe(0);
      expect(refused.stderr).toContain("use the '-r' flag");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('task-mgmt validate and schema', () => {
  it('prints what /run would do, and the errors with file, line and field', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'task-mgmt-validate-'));
    try {
      await writeFile(join(dir, 'Dockerfile'), 'FROM busybox\nCOPY run.sh /run.sh\nCMD sh /run.sh\n');
      await writeFile(join(dir, 'task-mgmt.yml'), 'version: 1\ntasks:\n  main:\n    dockerfile: Dockerfile\n    params:\n      lang: { default: en, pattern: "[a-z]{2}" }\n  mail:\n    needs: [main]\n    uses: notify/email\n    with: { to: [ops@example.org] }\n');
      const ok = await cli(['validate', dir], dir);
      expect(ok.code).toBe(0);
      expect(ok.stdout).toContain('2 tasks, in the order they run');
      expect(ok.stdout).toMatch(/main \(container\)[\s\S]*param lang → TASK_PARAM_LANG \(default en, matches \[a-z\]\{2\}\)/);
      expect(ok.stdout).toMatch(/mail \(notify\/email\)\n    needs: main/);
      expect(ok.stdout).toMatch(/needs an approving review[\s\S]*task-mgmt.yml[\s\S]*Dockerfile[\s\S]*run.sh/);

      await writeFile(join(dir, 'task-mgmt.yml'), 'version: 1\ntasks:\n  main:\n    dockerfile: Dockerfile\n    resources: { memory: lots }\n');
      const bad = await cli(['validate', dir], dir);
      expect(bad.code).toBe(1);
      expect(bad.stdout).toMatch(/^task-mgmt.yml:5:26: tasks.main.resources.memory: "lots" is not a size/m);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('ships the JSON Schema of task-mgmt.yml, generated from the same zod schema', async () => {
    const printed = await cli(['schema'], projectRoot);
    expect(printed.code).toBe(0);
    const committed = await readFile(join(projectRoot, 'task-mgmt.schema.json'), 'utf8');
    expect(JSON.parse(committed)).toEqual(JSON.parse(printed.stdout));
    expect(JSON.parse(committed).properties.tasks).toBeDefined();
  });
});

function cli(args: string[], cwd: string, env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(projectRoot, 'bin', 'task-mgmt.js'), ...args], {
      cwd,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

const dockerReady = await requireServices('docker');

describe.skipIf(!dockerReady)('task-mgmt run', () => {
  it('runs a folder\'s pipeline through the worker\'s code path and prints the CIDs', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'task-mgmt-run-'));
    try {
      await writeFile(join(dir, 'Dockerfile'), 'FROM busybox\nCMD printf "hello $TASK_PARAM_WHO\\n" > /out/hello.txt\n');
      await writeFile(join(dir, 'task-mgmt.yml'), 'version: 1\ntasks:\n  hello:\n    dockerfile: Dockerfile\n    params:\n      who: { default: world }\n  identify:\n    needs: [hello]\n    uses: files/identify\n');
      const result = await cli(['run', dir], dir, { DATA_DIR: join(dir, '.data') });
      expect(result.code, result.stdout + result.stderr).toBe(0);
      // Kubo's CID of "hello world\n": the parameter's default reached the container.
      expect(result.stdout).toContain('QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o  hello.txt');
      expect(result.stdout).toMatch(/^identify: succeeded ipfs:\/\/Qm\w+$/m);
      expect(result.stdout).toContain('filetypes.csv');
      const refused = await cli(['run', dir, 'hello', 'colour=red'], dir, { DATA_DIR: join(dir, '.data') });
      expect(refused.code).toBe(1);
      expect(refused.stdout).toContain('has no parameter `colour`');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
const scaleOutReady = dockerReady && (await requireServices('redis', 'postgres'));

describe.skipIf(!dockerReady)('processes', () => {
  let gh: FakeGitHub | undefined;
  const processes: AppProcess[] = [];
  const dirs: string[] = [];
  const cleanups: Array<() => Promise<void>> = [];

  afterEach(async () => {
    await Promise.all(processes.splice(0).map((p) => p.stop()));
    await gh?.close();
    await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
    for (const cleanup of cleanups.splice(0)) await cleanup();
  });

  async function repoWithIssue(): Promise<{ repo: Repo; number: number }> {
    gh = await FakeGitHub.start();
    const repo = await gh.createRepo({ owner: 'octo-org', name: `archive-${randomUUID().slice(0, 8)}`, files: { Dockerfile: dockerfile } });
    gh.setRole(repo, 'maintainer', 'maintain');
    return { repo, number: gh.createIssue(repo, { author: 'maintainer', title: 'archive' }) };
  }

  it('keeps queued runs of the embedded queue across a restart', async () => {
    const { repo, number } = await repoWithIssue();
    const dataDir = await mkdtemp(join(tmpdir(), 'task-mgmt-restart-'));
    dirs.push(dataDir);
    const first = await startApp(gh!, { DATA_DIR: dataDir, WORKERS: '0' });
    await gh!.comment(repo, number, 'maintainer', '/run');
    await gh!.waitFor(() => gh!.checkRuns(repo)[0], { timeoutMs: 20_000, message: 'no queued check run' });
    await first.stop();
    expect(gh!.checkRuns(repo)[0]!.status).toBe('queued');

    processes.push(await startApp(gh!, { DATA_DIR: dataDir, WORKERS: '1' }));
    const check = await gh!.waitFor(() => gh!.checkRuns(repo).find((c) => c.status === 'completed'), {
      timeoutMs: 60_000,
      message: 'the queued run did not finish after the restart',
    });
    expect(check.conclusion).toBe('success');
    expect(check.output.summary).toContain('QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o');
    expect(gh!.checkRuns(repo)).toHaveLength(1);
  });

  it.skipIf(!scaleOutReady)('runs on a separate `task-mgmt worker` process sharing Redis and PostgreSQL', async () => {
    const { repo, number } = await repoWithIssue();
    const database = await createTestDatabase();
    cleanups.push(() => database.drop());
    const queue = {
      QUEUE_URL: 'redis://127.0.0.1:6379',
      QUEUE_PREFIX: `task-mgmt-test-${randomUUID()}`,
      DATABASE_URL: database.url,
    };
    const app = await startApp(gh!, { ...queue, WORKERS: '0' });
    processes.push(app);
    const worker = await startApp(gh!, { ...queue, WORKERS: '2' }, ['worker']);
    processes.push(worker);
    await gh!.comment(repo, number, 'maintainer', '/run');
    const check = await gh!
      .waitFor(() => gh!.checkRuns(repo).find((c) => c.status === 'completed'), { timeoutMs: 45_000 })
      .catch((error: Error) => {
        throw new Error(`${error.message}: the worker process did not finish the run\napp:\n${app.output().slice(-3000)}\nworker:\n${worker.output().slice(-3000)}`);
      });
    expect(check.conclusion).toBe('success');
    expect(worker.output()).toMatch(/run finished/);
  });
});

describe.skipIf(!dockerReady)('runs that go wrong, and replies', () => {
  let gh: FakeGitHub;
  let app: AppProcess;

  beforeAll(async () => {
    gh = await FakeGitHub.start();
    app = await startApp(gh, { TASK_TIMEOUT: '4s' });
  });

  afterAll(async () => {
    await app?.stop();
    await gh?.close();
  });

  async function issueIn(files: Record<string, string>): Promise<{ repo: Repo; number: number }> {
    const repo = await gh.createRepo({ owner: 'octo-org', name: `archive-${randomUUID().slice(0, 8)}`, files });
    gh.setRole(repo, 'maintainer', 'maintain');
    return { repo, number: gh.createIssue(repo, { author: 'maintainer', title: 'archive' }) };
  }

  async function completed(repo: Repo) {
    return gh.waitFor(() => gh.checkRuns(repo).find((c) => c.status === 'completed'), {
      timeoutMs: 45_000,
      message: `no completed check run\n${app.output().slice(-3000)}`,
    });
  }

  it('a task that outlives its timeout is stopped and concludes timed_out', async () => {
    const { repo, number } = await issueIn({ Dockerfile: 'FROM busybox\nCMD echo started && sleep 600\n' });
    await gh.comment(repo, number, 'maintainer', '/run');
    const check = await completed(repo);
    expect(check.conclusion).toBe('timed_out');
    expect(check.output.summary).toMatch(/longer than its 4\.0 s timeout/);
    expect(check.output.text).toContain('started');
  });

  it('an image that does not build fails with the build log', async () => {
    const { repo, number } = await issueIn({ Dockerfile: 'FROM busybox\nRUN echo compiling && false\n' });
    await gh.comment(repo, number, 'maintainer', '/run');
    const check = await completed(repo);
    expect(check.conclusion).toBe('failure');
    expect(check.output.summary).toContain('the image did not build');
    expect(check.output.text).toContain('compiling');
  });

  it('a repository without a Dockerfile gets a reply saying what to add, and no check run', async () => {
    const { repo, number } = await issueIn({ 'README.md': 'nothing to run\n' });
    await gh.comment(repo, number, 'maintainer', '/run');
    const reply = await gh.waitFor(() => gh.commentsOn(repo, number).find((c) => c.user.login === gh.botLogin), { timeoutMs: 20_000 });
    expect(reply.body).toMatch(/declares no task: add a `task-mgmt.yml` or a `Dockerfile`/);
    expect(gh.checkRuns(repo)).toEqual([]);
  });

  it('answers /help, and a near-miss command with a suggestion', async () => {
    const { repo, number } = await issueIn({ Dockerfile: 'FROM busybox\n' });
    await gh.comment(repo, number, 'maintainer', '/help');
    await gh.comment(repo, number, 'maintainer', '/rnu');
    const replies = await gh.waitFor(
      () => {
        const bodies = gh.commentsOn(repo, number).filter((c) => c.user.login === gh.botLogin).map((c) => c.body);
        return bodies.length >= 2 ? bodies : undefined;
      },
      { timeoutMs: 20_000 },
    );
    expect(replies.join('\n')).toContain('task-mgmt commands');
    expect(replies.join('\n')).toContain('Did you mean `/run`?');
    expect(gh.checkRuns(repo)).toEqual([]);
  });
});

describe.skipIf(!dockerReady)('a worker that dies mid-run', () => {
  it('SIGKILLed worker: its run is queued again and finished by another worker, not lost and not stuck', { timeout: 120_000 }, async () => {
    const gh = await FakeGitHub.start();
    const dataDir = await mkdtemp(join(tmpdir(), 'task-mgmt-kill-'));
    const started: AppProcess[] = [];
    try {
      const repo = await gh.createRepo({
        owner: 'octo-org',
        name: `kill-${randomUUID().slice(0, 8)}`,
        files: { Dockerfile: 'FROM busybox\nCMD echo working && sleep 8 && printf "hello world\\n" > /out/hello.txt\n' },
      });
      gh.setRole(repo, 'maintainer', 'maintain');
      const number = gh.createIssue(repo, { author: 'maintainer', title: 'archive' });
      const shared = { DATA_DIR: dataDir, WORKER_LEASE: '3s' };
      started.push(await startApp(gh, { ...shared, WORKERS: '0' }));
      const doomed = await startApp(gh, { ...shared, WORKERS: '1' }, ['worker']);
      started.push(doomed);
      await gh.comment(repo, number, 'maintainer', '/run');
      await gh.waitFor(() => gh.checkRuns(repo).find((c) => c.status === 'in_progress'), { timeoutMs: 30_000 }).catch((error: Error) => {
        throw new Error(`${error.message}: the run never started\n${started[0]!.output().slice(-2000)}\n${doomed.output().slice(-2000)}`);
      });
      await new Promise((r) => setTimeout(r, 2500)); // the container is running now
      doomed.kill('SIGKILL');

      started.push(await startApp(gh, { ...shared, WORKERS: '1' }, ['worker']));
      const check = await gh.waitFor(() => gh.checkRuns(repo).find((c) => c.status === 'completed'), {
        timeoutMs: 60_000,
        message: `the run was not recovered\n${started[0]!.output().slice(-3000)}`,
      });
      expect(check.conclusion).toBe('success');
      expect(check.output.summary).toContain('QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o');
      expect(check.history.some((body) => String((body.output as { summary?: string } | undefined)?.summary ?? '').includes('Queued again: its worker'))).toBe(true);
      expect(gh.checkRuns(repo)).toHaveLength(1);
    } finally {
      for (const process of started) await process.stop();
      await gh.close();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
