/**
 * A two-task pipeline whose tasks run in two `task-mgmt worker` processes with different DATA_DIRs,
 * sharing only Redis and PostgreSQL with the app, as on two machines. The first worker shares the
 * app's DATA_DIR (it runs on the app's machine), so the app's gateway serves what it added; the
 * second has its own and gets the first task's outputs from the app's gateway by CID, with its
 * WORKER_TOKEN since the repository is private. A block spoiled in the app's store fails the
 * second task in one line.
 *
 * Which worker takes which task is made certain, not left to chance: the first task's download
 * is held open while it runs on the first worker, that worker is told to stop (SIGTERM: it takes
 * no more runs but finishes this one), and only then is the second worker started and the
 * download let go.
 */
import { randomUUID } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FakeGitHub, type Repo } from '../fake-github/index.js';
import { createTestDatabase } from '../support/postgres.js';
import { requireServices } from '../support/services.js';
import { startApp, type AppProcess } from '../support/app-process.js';

const ready = await requireServices('redis', 'postgres');
const token = `worker-token-${randomUUID()}`;

describe.skipIf(!ready)('pipelines across machines', () => {
  const cleanups: Array<() => Promise<unknown>> = [];

  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
  });

  /** A web server whose one file is sent only when the test says so. */
  async function heldDownload(): Promise<{ url: string; asked: Promise<void>; release(): void }> {
    let held: ServerResponse | undefined;
    let askedResolve!: () => void;
    const asked = new Promise<void>((resolve) => (askedResolve = resolve));
    const server: Server = createServer((req, res) => {
      if (req.url !== '/data.txt') return void res.writeHead(404).end();
      held = res;
      askedResolve();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.push(async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    });
    return {
      url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/data.txt`,
      asked,
      release: () => held?.writeHead(200, { 'content-type': 'text/plain' }).end('hello world\n'),
    };
  }

  /**
   * The app and its first worker on one DATA_DIR, the second worker on another; the pipeline's
   * first task is held running on the first worker until `release`, by then told to stop.
   */
  async function twoMachines(): Promise<{ gh: FakeGitHub; repo: Repo; app: AppProcess; first: AppProcess; startSecond(): Promise<AppProcess>; release(): void }> {
    const gh = await FakeGitHub.start();
    cleanups.push(() => gh.close());
    const database = await createTestDatabase();
    cleanups.push(() => database.drop());
    const download = await heldDownload();
    const shared = {
      QUEUE_URL: 'redis://127.0.0.1:6379',
      QUEUE_PREFIX: `task-mgmt-test-${randomUUID()}`,
      DATABASE_URL: database.url,
      ALLOW_PRIVATE_ADDRESSES: 'true',
      COMMANDS_PER_MINUTE: '1000',
    };
    const app = await startApp(gh, { ...shared, WORKERS: '0', API_TOKENS: token });
    cleanups.push(() => app.stop());
    const first = await startApp(gh, { ...shared, WORKERS: '1', DATA_DIR: app.dataDir, SHUTDOWN_GRACE: '2m' }, ['worker']);
    cleanups.push(() => first.stop());

    const manifest = `version: 1
tasks:
  fetch:
    uses: ipfs/add-url
    with: { url: "${download.url}" }
  identify:
    needs: [fetch]
    uses: files/identify
    with: { input: fetch }
`;
    const repo = await gh.createRepo({ owner: 'octo-org', name: `machines-${randomUUID().slice(0, 8)}`, private: true, files: { 'task-mgmt.yml': manifest } });
    gh.setRole(repo, 'maintainer', 'maintain');
    const number = gh.createIssue(repo, { author: 'maintainer', title: 'archive' });
    await gh.comment(repo, number, 'maintainer', '/run identify');
    await withinSeconds(30, download.asked, () => `the first worker never started the download\n${first.output().slice(-3000)}`);
    // It holds the first task now; told to stop, it takes nothing more but finishes that one.
    first.kill('SIGTERM');
    await waitForText(first, 'worker stopping: taking no more runs');

    return {
      gh,
      repo,
      app,
      first,
      async startSecond() {
        const second = await startApp(gh, { ...shared, WORKERS: '1', PUBLIC_URL: app.url, WORKER_TOKEN: token }, ['worker']);
        cleanups.push(() => second.stop());
        return second;
      },
      release: download.release,
    };
  }

  async function completed(machines: { gh: FakeGitHub; repo: Repo; app: AppProcess; first: AppProcess }, second: AppProcess) {
    const { gh, repo } = machines;
    return gh.waitFor(
      () => {
        const checks = gh.checkRuns(repo);
        return checks.length === 2 && checks.every((check) => check.status === 'completed') ? Object.fromEntries(checks.map((check) => [check.name, check])) : undefined;
      },
      {
        timeoutMs: 60_000,
        message: `the pipeline did not finish\napp:\n${machines.app.output().slice(-2000)}\nfirst:\n${machines.first.output().slice(-2000)}\nsecond:\n${second.output().slice(-3000)}`,
      },
    );
  }

  it("the second worker gets the first task's outputs through the app's gateway, and its result is right", { timeout: 120_000 }, async () => {
    const machines = await twoMachines();
    const second = await machines.startSecond();
    machines.release();
    const checks = await completed(machines, second);

    const fetch = checks['task-mgmt / fetch']!;
    const identify = checks['task-mgmt / identify']!;
    expect(fetch.conclusion).toBe('success');
    expect(identify.conclusion, identify.output.summary ?? '').toBe('success');
    expect(machines.first.output()).toMatch(/"task":"fetch".*"msg":"run finished"/);
    expect(machines.first.output()).not.toMatch(/"task":"identify".*"msg":"run started"/);
    expect(second.output()).toMatch(/"task":"identify".*"msg":"run finished"/);
    expect(identify.output.text).toMatch(/task-mgmt: fetched the outputs of `fetch` \(Qm\w+\), every block checked against its CID/);

    // The second worker's own DATA_DIR holds the fetched copy and what identify made of it.
    const outputs = await readdir(join(second.dataDir, 'outputs'));
    expect(outputs).toHaveLength(2);
    const found = await Promise.all(outputs.map((run) => readFile(join(second.dataDir, 'outputs', run, 'filetypes.csv'), 'utf8').catch(() => null)));
    const csv = found.find((text) => text !== null)!;
    expect(csv).toContain('fetch,data.txt,12,text/plain,txt,');
    expect(outputs.some((run) => found[outputs.indexOf(run)] === null)).toBe(true);
    expect(await readFile(join(second.dataDir, 'outputs', outputs[found.indexOf(null)]!, 'data.txt'), 'utf8')).toBe('hello world\n');
  });

  it("a block spoiled in the app's store fails the second task in one line naming the task and the CID", { timeout: 120_000 }, async () => {
    const machines = await twoMachines();
    machines.release();
    const fetched = await machines.gh.waitFor(() => machines.gh.checkRuns(machines.repo).find((check) => check.name === 'task-mgmt / fetch' && check.status === 'completed'), {
      timeoutMs: 30_000,
      message: `the first task did not finish\n${machines.first.output().slice(-3000)}`,
    });
    expect(fetched.conclusion).toBe('success');
    await machines.first.exited;
    // The block holding "hello world\n", changed in place in the app's store.
    const blockFile = await findFile(join(machines.app.dataDir, 'ipfs', 'packs'), 'hello world\n');
    const bytes = await readFile(blockFile);
    const at = bytes.indexOf('hello world\n');
    bytes.write('HELLO', at);
    await writeFile(blockFile, bytes);

    const second = await machines.startSecond();
    const checks = await completed(machines, second);
    const identify = checks['task-mgmt / identify']!;
    expect(identify.conclusion).toBe('failure');
    expect(identify.output.summary).toMatch(
      /the outputs of `fetch` \(Qm\w+\) could not be fetched: block Qm\w+ from the app's gateway at http:\/\/127\.0\.0\.1:\d+\/ipfs\/Qm\w+ does not match its CID/,
    );
    expect(await readdir(join(second.dataDir, 'outputs')).catch(() => [])).toHaveLength(1);
  });
});

async function withinSeconds(seconds: number, promise: Promise<void>, message: () => string): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([promise, new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(message())), seconds * 1000)))]);
  } finally {
    clearTimeout(timer);
  }
}

async function waitForText(process: AppProcess, text: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!process.output().includes(text)) {
    if (Date.now() > deadline) throw new Error(`the process did not log "${text}":\n${process.output().slice(-3000)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The file under `root` holding `text`. */
async function findFile(root: string, text: string): Promise<string> {
  for (const entry of await readdir(root, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    if ((await readFile(path)).includes(text)) return path;
  }
  throw new Error(`no block file under ${root} holds ${JSON.stringify(text)}`);
}

