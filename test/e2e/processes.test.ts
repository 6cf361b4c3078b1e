/**
 * The app as an operator runs it: the setup flow without APP_ID, a backlog that survives a
 * restart, and workers in separate processes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FakeGitHub, type Repo } from '../fake-github/index.js';
import { requireServices } from '../support/services.js';
import { createTestDatabase } from '../support/postgres.js';
import { freePort, projectRoot, startApp, type AppProcess } from '../support/app-process.js';
import { registrationForm } from '../support/registration-form.js';
import { SqliteRunStore } from '../../src/adapters/store/sqlite-run-store.js';

const dockerfile = 'FROM busybox\nCMD printf "hello world\\n" > /out/hello.txt\n';

describe('npm start without APP_ID', () => {
  it('serves the registration page, whose form carries app.yml to GitHub as valid JSON with the app\'s own webhook URL', async () => {
    const port = await freePort();
    const child = spawn(process.execPath, [join(projectRoot, 'bin', 'task-mgmt.js'), 'serve'], {
      cwd: projectRoot,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn' },
      stdio: 'ignore',
    });
    try {
      let page = '';
      // Up to 30 s: a loaded machine starts slowly.
      for (let i = 0; i < 300 && !page; i += 1) {
        try {
          const response = await fetch(`http://127.0.0.1:${port}/probot`);
          if (response.ok) page = await response.text();
        } catch {
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      expect(page).toContain('Register GitHub App');
      // What a browser would post, read by an HTML parser: app.yml (an apostrophe in its description
      // broke Probot's page) and the URL this app serves webhooks at.
      const { action, manifest } = registrationForm(page);
      expect(action).toMatch(/^https:\/\/github\.com\/settings\/apps\/new\?state=[0-9a-f]{32}$/);
      const appYml = await readFile(join(projectRoot, 'app.yml'), 'utf8');
      expect(manifest.description).toBe(/^description: (.*)$/m.exec(appYml)![1]);
      expect(manifest.description).toContain("'");
      expect(manifest).toMatchObject({
        name: 'task-mgmt',
        default_events: expect.arrayContaining(['issue_comment', 'pull_request', 'pull_request_review', 'check_run', 'push']),
        default_permissions: { checks: 'write', contents: 'read', issues: 'write', pull_requests: 'write', metadata: 'read' },
        hook_attributes: { url: `http://127.0.0.1:${port}/api/github/webhooks` },
        redirect_url: `http://127.0.0.1:${port}/probot/setup`,
      });
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

describe('the command line, as a new user meets it', () => {
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'task-mgmt-cli-'));
    await writeFile(join(dir, 'a-file.txt'), 'not a folder\n');
    await mkdir(join(dir, 'repo'));
    await writeFile(join(dir, 'repo', 'Dockerfile'), 'FROM busybox\nCMD true\n');
    await mkdir(join(dir, 'web'));
    await writeFile(join(dir, 'web', 'Dockerfile'), 'FROM busybox\nCMD true\n');
    await writeFile(join(dir, 'web', 'task-mgmt.yml'), 'version: 1\ntasks:\n  crawl:\n    dockerfile: Dockerfile\n    network: true\n');
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('prints the usage with no arguments, and starts no server', async () => {
    const result = await cli([], dir);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/^usage: task-mgmt <command>/);
    expect(result.stderr).toContain('run [dir] [task] [key=value…]');
  });

  it.each(['serve', 'worker', 'run', 'validate', 'add', 'verify', 'schema'])('`%s --help` says what the command takes, and does nothing else', async (command) => {
    // Even with a configuration that would stop the command itself.
    const result = await cli([command, '--help'], dir, { APP_ID: 'not a number' });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(new RegExp(`^usage: task-mgmt ${command}`, 'i'));
  });

  it.each([
    ['validate of a folder that is not there', ['validate', 'no-such/folder'], 2, /^task-mgmt validate: there is no folder no-such\/folder$/],
    ['run of a file', ['run', 'a-file.txt'], 2, /^task-mgmt run: a-file\.txt is a file, not a folder/],
    ['run of a folder that is not there', ['run', './missing'], 2, /^task-mgmt run: there is no folder \.\/missing$/],
    ['run when Docker cannot be reached', ['run', 'repo'], 1, /^task-mgmt run: cannot reach the Docker engine at 127\.0\.0\.1:1 \(.*\): start Docker, or set DOCKER_HOST/],
    ['run of what run refuses', ['run', 'web'], 1, /^task-mgmt run: the task `crawl` asks for `network: true`/],
  ])('%s: one line, no stack trace, a non-zero exit', async (_name, args, code, line) => {
    const result = await cli(args, dir, { DATA_DIR: join(dir, 'data'), DOCKER_HOST: 'tcp://127.0.0.1:1' });
    expect(result.code, result.stdout + result.stderr).toBe(code);
    const lines = result.stderr.trimEnd().split('\n');
    expect(lines, result.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(line);
    expect(result.stdout + result.stderr).not.toMatch(/^\s+at /m);
  });

  it('validate says what run would refuse', async () => {
    const result = await cli(['validate', 'web'], dir);
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/task-mgmt run and \/run would refuse it: the task `crawl` asks for `network: true`/);
  });
});

describe('task-mgmt worker', () => {
  it('starts without WEBHOOK_SECRET: it takes no webhooks', async () => {
    const gh = await FakeGitHub.start();
    try {
      // startApp waits for the worker's "worker is taking runs", and fails if it exits first.
      const worker = await startApp(gh, { WEBHOOK_SECRET: '' }, ['worker']);
      expect(worker.output()).toContain('worker is taking runs');
      await worker.stop();
    } finally {
      await gh.close();
    }
  });

  it('refuses a private key that is not an RSA key at start, in one line naming the variable', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'task-mgmt-key-'));
    try {
      await writeFile(join(dir, 'app.pem'), '-----BEGIN RSA PRIVATE KEY-----\nnot a key\n-----END RSA PRIVATE KEY-----\n');
      for (const env of [{ PRIVATE_KEY: 'not a key' }, { PRIVATE_KEY_PATH: join(dir, 'app.pem') }] as Array<Record<string, string>>) {
        const result = await cli(['worker'], dir, { APP_ID: '123', DATA_DIR: join(dir, 'data'), ...env });
        expect(result.code).not.toBe(0);
        expect(result.stderr).toMatch(/^task-mgmt worker: invalid configuration: PRIVATE_KEY(_PATH \(.*app\.pem\))? is not an RSA private key in PEM format[^\n]*\n$/);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

/** A web server that takes requests and never answers them: a download that is still going. */
async function hangingServer(): Promise<{ url: string; requests: IncomingMessage[]; close(): Promise<void> }> {
  const requests: IncomingMessage[] = [];
  const server: Server = createServer((req) => requests.push(req));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}/wikipedia.zim`,
    requests,
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

async function until(predicate: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('task-mgmt run beside a server on the same DATA_DIR', () => {
  it('a local run left queued is never picked up by the server', { timeout: 90_000 }, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'task-mgmt-local-'));
    const download = await hangingServer();
    const gh = await FakeGitHub.start();
    let child: ChildProcess | undefined;
    let app: AppProcess | undefined;
    try {
      await mkdir(join(dir, 'repo'));
      await writeFile(join(dir, 'repo', 'task-mgmt.yml'), `version: 1\ntasks:\n  fetch:\n    uses: ipfs/add-url\n    with: { url: "${download.url}" }\n  identify:\n    needs: [fetch]\n    uses: files/identify\n    with: { input: fetch }\n`);
      const dataDir = join(dir, 'data');
      // The local run is killed mid-download: `fetch` stays running, `identify` queued.
      child = spawn(process.execPath, [join(projectRoot, 'bin', 'task-mgmt.js'), 'run', join(dir, 'repo')], {
        cwd: dir,
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', DATA_DIR: dataDir, ALLOW_PRIVATE_ADDRESSES: 'true' },
        stdio: 'ignore',
      });
      await until(() => download.requests.length > 0, 'the local run to start its download');
      child.kill('SIGKILL');
      await new Promise((resolve) => child!.once('exit', resolve));

      app = await startApp(gh, { DATA_DIR: dataDir, WORKERS: '1', WORKER_LEASE: '3s', ALLOW_PRIVATE_ADDRESSES: 'true' });
      // The server looks for queued runs every second and for abandoned ones every 1.5 s here.
      await new Promise((r) => setTimeout(r, 5000));
      expect(download.requests).toHaveLength(1);
      expect(gh.requests.filter((r) => r.path.includes('/installations/1/') || r.path.includes('/repos/local/'))).toEqual([]);
      expect(app.output()).not.toMatch(/run started/);

      const local = SqliteRunStore.openReadOnly(join(dataDir, 'local', 'task-mgmt.sqlite'));
      try {
        expect((await local.listRuns({ limit: 10 })).map((run) => [run.task, run.state]).sort()).toEqual([
          ['fetch', 'running'],
          ['identify', 'queued'],
        ]);
      } finally {
        await local.close();
      }
    } finally {
      if (child && child.exitCode === null) child.kill('SIGKILL');
      await app?.stop();
      await gh.close();
      await download.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('SIGTERM', () => {
  it('exits within SHUTDOWN_GRACE and a few seconds though GitHub stops answering, handing the running run back to the queue', { timeout: 120_000 }, async () => {
    const gh = await FakeGitHub.start();
    const download = await hangingServer();
    const dataDir = await mkdtemp(join(tmpdir(), 'task-mgmt-sigterm-'));
    let app: AppProcess | undefined;
    try {
      const repo = await gh.createRepo({
        owner: 'octo-org',
        name: `sigterm-${randomUUID().slice(0, 8)}`,
        files: { 'task-mgmt.yml': `version: 1\ntasks:\n  fetch:\n    uses: ipfs/add-url\n    with: { url: "${download.url}" }\n` },
      });
      gh.setRole(repo, 'maintainer', 'maintain');
      const number = gh.createIssue(repo, { author: 'maintainer', title: 'archive' });
      app = await startApp(gh, { DATA_DIR: dataDir, WORKERS: '1', SHUTDOWN_GRACE: '2s', ALLOW_PRIVATE_ADDRESSES: 'true' });
      await gh.comment(repo, number, 'maintainer', '/run');
      await until(() => download.requests.length > 0, `the run to start its download\n${app.output().slice(-2000)}`);

      gh.setLatency(10 * 60_000);
      const signalled = Date.now();
      app.kill('SIGTERM');
      const exit = await app.exited;
      const seconds = (Date.now() - signalled) / 1000;
      // 2 s of grace, at most 5 s to hand the run back, and room for a loaded machine.
      expect(seconds, app.output().slice(-3000)).toBeLessThan(2 + 5 + 5);
      expect(exit).toEqual({ code: 0, signal: null });
      expect(app.output()).toMatch(/runs still going go back to the queue/);

      const store = SqliteRunStore.openReadOnly(join(dataDir, 'task-mgmt.sqlite'));
      try {
        const [run] = await store.listRuns({ limit: 10 });
        expect(run).toMatchObject({ task: 'fetch', state: 'queued', workerId: null });
      } finally {
        await store.close();
      }
    } finally {
      await app?.stop();
      gh.setLatency(0);
      await gh.close();
      await download.close();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});

const dockerReady = await requireServices('docker');

describe.skipIf(!dockerReady)('task-mgmt run', () => {
  it('runs a folder\'s pipeline through the worker\'s code path and prints the CIDs', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'task-mgmt-run-'));
    try {
      await writeFile(join(dir, 'Dockerfile'), 'FROM busybox\nCMD printf "hello $TASK_PARAM_WHO\\n" > /out/hello.txt && echo "wrote hello.txt"\n');
      await writeFile(join(dir, 'task-mgmt.yml'), 'version: 1\ntasks:\n  hello:\n    dockerfile: Dockerfile\n    params:\n      who: { default: world }\n  identify:\n    needs: [hello]\n    uses: files/identify\n');
      const result = await cli(['run', dir], dir, { DATA_DIR: join(dir, '.data') });
      // The task's own output, as it ran, line by line.
      expect(result.stdout).toMatch(/^\[hello\] wrote hello\.txt$/m);
      expect(result.code, result.stdout + result.stderr).toBe(0);
      // Kubo's CID of "hello world\n": the parameter's default reached the container.
      expect(result.stdout).toContain('QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o  hello.txt');
      expect(result.stdout).toMatch(/^identify: succeeded ipfs:\/\/Qm\w+$/m);
      expect(result.stdout).toContain('filetypes.csv');
      // Each run's provenance record, last among its lines.
      expect(result.stdout.match(/^  provenance: ipfs:\/\/(\w+)  \(task-mgmt verify \1\)$/gm)).toHaveLength(2);
      const refused = await cli(['run', dir, 'hello', 'colour=red'], dir, { DATA_DIR: join(dir, '.data') });
      expect(refused.code).toBe(1);
      expect(refused.stderr).toMatch(/^task-mgmt run: .*has no parameter `colour`.*\n$/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('builds the Dockerfile `uses: container` names in `with:`, from the context it names, not the root one', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'task-mgmt-run-'));
    try {
      await writeFile(join(dir, 'Dockerfile'), 'FROM busybox\nCMD printf "root\\n" > /out/root.txt\n');
      await mkdir(join(dir, 'build'));
      await writeFile(join(dir, 'build', 'greeting.txt'), 'hello world\n');
      await writeFile(join(dir, 'build', 'Dockerfile.archive'), 'FROM busybox\nCOPY greeting.txt /greeting.txt\nCMD cp /greeting.txt /out/hello.txt\n');
      await writeFile(join(dir, 'task-mgmt.yml'), 'version: 1\ntasks:\n  archive:\n    uses: container\n    with: { dockerfile: build/Dockerfile.archive, context: build }\n');
      const result = await cli(['run', dir], dir, { DATA_DIR: join(dir, '.data') });
      expect(result.code, result.stdout + result.stderr).toBe(0);
      // Kubo's CID of "hello world\n", copied from the named context by the named Dockerfile.
      expect(result.stdout).toContain('QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o  hello.txt');
      expect(result.stdout).not.toContain('root.txt');
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
