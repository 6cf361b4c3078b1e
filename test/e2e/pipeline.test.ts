/**
 * `task-mgmt.yml` pipelines end to end: built-in task types and containers in `needs` order,
 * parameters, outputs handed on, failures that cancel what needs them, and manifest errors.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeGitHub, type Repo } from '../fake-github/index.js';
import { requireServices } from '../support/services.js';
import { startApp, type AppProcess } from '../support/app-process.js';

const dockerReady = await requireServices('docker');

describe.skipIf(!dockerReady)('pipelines', () => {
  let gh: FakeGitHub;
  let app: AppProcess;
  let site: Server;
  let siteUrl: string;

  beforeAll(async () => {
    site = createServer((req, res) => {
      if (req.url === '/data.txt') res.writeHead(200, { 'content-type': 'text/plain' }).end('hello world\n');
      else res.writeHead(404).end('not here');
    });
    await new Promise<void>((resolve) => site.listen(0, '127.0.0.1', resolve));
    const address = site.address();
    siteUrl = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
    gh = await FakeGitHub.start();
    // The test's own web server is on loopback, which production refuses.
    app = await startApp(gh, { ALLOW_PRIVATE_ADDRESSES: 'true', COMMANDS_PER_MINUTE: '1000', WORKERS: '2' });
  });

  afterAll(async () => {
    await app?.stop();
    await gh?.close();
    site?.close();
  });

  const manifest = (url: string) => `version: 1
tasks:
  fetch:
    uses: ipfs/add-url
    with: { url: "${url}" }
  process:
    needs: [fetch]
    dockerfile: Dockerfile
    params:
      lang: { default: en, pattern: "[a-z]{2}" }
    timeout: 2m
    resources: { cpus: 1, memory: 256m }
`;
  const dockerfile = 'FROM busybox\nCMD wc -c < /in/fetch/data.txt > /out/count.txt && echo "lang=$TASK_PARAM_LANG" >> /out/count.txt && cat /out/count.txt\n';

  async function repoWith(files: Record<string, string>): Promise<{ repo: Repo; number: number }> {
    const repo = await gh.createRepo({ owner: 'octo-org', name: `pipe-${randomUUID().slice(0, 8)}`, files });
    gh.setRole(repo, 'maintainer', 'maintain');
    return { repo, number: gh.createIssue(repo, { author: 'maintainer', title: 'archive' }) };
  }

  async function completed(repo: Repo, count: number) {
    return gh.waitFor(
      () => {
        const checks = gh.checkRuns(repo);
        return checks.length >= count && checks.every((c) => c.status === 'completed') ? checks : undefined;
      },
      { timeoutMs: 60_000, message: `the pipeline did not finish\n${app.output().slice(-3000)}` },
    );
  }

  it('runs fetch then process, hands fetch\'s output to the container at /in/fetch, and passes parameters', async () => {
    const { repo, number } = await repoWith({ 'task-mgmt.yml': manifest(`${siteUrl}/data.txt`), Dockerfile: dockerfile });
    await gh.comment(repo, number, 'maintainer', '/run process lang=de');
    const checks = await completed(repo, 2);
    const byName = Object.fromEntries(checks.map((c) => [c.name, c]));
    expect(Object.keys(byName).sort()).toEqual(['task-mgmt / fetch', 'task-mgmt / process']);
    expect(byName['task-mgmt / fetch']!.conclusion).toBe('success');
    // Kubo's CID of "hello world\n", fetched over HTTP by the ipfs/add-url type.
    expect(byName['task-mgmt / fetch']!.output.summary).toContain('QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o');
    const process = byName['task-mgmt / process']!;
    expect(process.conclusion).toBe('success');
    expect(process.output.text).toMatch(/^12\nlang=de$/m);
    expect(Date.parse(process.startedAt!)).toBeGreaterThanOrEqual(Date.parse(byName['task-mgmt / fetch']!.completedAt!) - 1000);
  });

  it('a failed task cancels the tasks that need it, and their check runs say why', async () => {
    const { repo, number } = await repoWith({ 'task-mgmt.yml': manifest(`${siteUrl}/missing.txt`), Dockerfile: dockerfile });
    await gh.comment(repo, number, 'maintainer', '/run');
    const checks = await completed(repo, 2);
    const byName = Object.fromEntries(checks.map((c) => [c.name, c]));
    expect(byName['task-mgmt / fetch']!.conclusion).toBe('failure');
    expect(byName['task-mgmt / process']!.conclusion).toBe('cancelled');
    expect(byName['task-mgmt / process']!.output.summary).toContain('the task `fetch` it needs ended failed, so it did not run');
  });

  it('a bad parameter is refused naming it, and nothing is queued', async () => {
    const { repo, number } = await repoWith({ 'task-mgmt.yml': manifest(`${siteUrl}/data.txt`), Dockerfile: dockerfile });
    await gh.comment(repo, number, 'maintainer', '/run process lang=ENGLISH');
    const reply = await gh.waitFor(() => gh.commentsOn(repo, number).find((c) => c.user.login === gh.botLogin), { timeoutMs: 20_000 });
    expect(reply.body).toContain('parameter `lang` of `process` must match `[a-z]{2}`');
    expect(gh.checkRuns(repo)).toEqual([]);
  });

  it('a bad manifest fails at once with a check run that points at the line, and nothing is queued', async () => {
    const broken = manifest(`${siteUrl}/data.txt`).replace('timeout: 2m', 'timeout: soon');
    const { repo, number } = await repoWith({ 'task-mgmt.yml': broken, Dockerfile: dockerfile });
    await gh.comment(repo, number, 'maintainer', '/run');
    const [check] = await completed(repo, 1);
    expect(check!.name).toBe('task-mgmt / manifest');
    expect(check!.conclusion).toBe('failure');
    expect(check!.output.summary).toMatch(/`task-mgmt.yml` line 11, column 14, `tasks.process.timeout`: `"soon" is not a duration/);
    expect(check!.output.annotationsCount).toBe(1);
    const reply = await gh.waitFor(() => gh.commentsOn(repo, number).find((c) => c.user.login === gh.botLogin), { timeoutMs: 20_000 });
    expect(reply.body).toContain('`task-mgmt.yml` line 11');
    expect(gh.checkRuns(repo)).toHaveLength(1);
  });

  it('shows a container\'s /out/.progress.json in the check run while it runs, and does not publish it', { timeout: 90_000 }, async () => {
    const { repo, number } = await repoWith({
      Dockerfile: 'FROM busybox\nCMD printf \'{"done": 40, "total": 100, "message": "pages"}\' > /out/.progress.json && sleep 16 && echo done > /out/result.txt\n',
    });
    await gh.comment(repo, number, 'maintainer', '/run');
    const [check] = await completed(repo, 1);
    expect(check!.conclusion).toBe('success');
    const summaries = check!.history.map((body) => String((body.output as { summary?: string } | undefined)?.summary ?? ''));
    expect(summaries.some((summary) => summary.includes('**Progress:** 40 of 100 (40%) — `pages`'))).toBe(true);
    expect(check!.output.summary).toContain('`result.txt`');
    expect(check!.output.summary).not.toContain('.progress.json');
  });
});
