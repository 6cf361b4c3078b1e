/**
 * `/run` end to end: the real app process, the fake GitHub, a real Docker engine, and — in the
 * second block — a real Redis behind BullMQ. Covers the first slice's user-visible promises.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeGitHub, type Repo } from '../fake-github/index.js';
import { requireServices } from '../support/services.js';
import { startApp, type AppProcess } from '../support/app-process.js';

const helloDockerfile = [
  'FROM busybox',
  'CMD echo "building the archive" && printf "hello world\\n" > /out/hello.txt && mkdir /out/parts && printf "Hello Worlds!\\n" > /out/parts/a.txt && echo done',
  '',
].join('\n');

const failingDockerfile = ['FROM busybox', 'CMD echo "about to fail" && echo "disk on fire" >&2 && exit 3', ''].join('\n');

const dockerReady = await requireServices('docker');
const redisReady = dockerReady && (await requireServices('redis'));

const modes = [
  { name: 'embedded queue', ready: dockerReady, env: () => ({}) },
  {
    name: 'BullMQ on Redis',
    ready: redisReady,
    env: () => ({ QUEUE_URL: 'redis://127.0.0.1:6379', QUEUE_PREFIX: `task-mgmt-test-${randomUUID()}` }),
  },
];

for (const mode of modes) {
  describe.skipIf(!mode.ready)(`/run end to end (${mode.name})`, () => {
    let gh: FakeGitHub;
    let app: AppProcess;

    beforeAll(async () => {
      gh = await FakeGitHub.start();
      app = await startApp(gh, mode.env());
    });

    afterAll(async () => {
      await app?.stop();
      if (gh) {
        const appOutput = app?.output() ?? '';
        // No secret may reach a log line.
        expect(appOutput).not.toContain(gh.webhookSecret);
        expect(appOutput).not.toContain(gh.privateKey.split('\n')[1]);
        expect(appOutput).not.toMatch(/ghs_[A-Za-z0-9]{8}/);
        await gh.close();
      }
    });

    async function newRepo(files: Record<string, string>): Promise<Repo> {
      const repo = await gh.createRepo({ owner: 'octo-org', name: `archive-${randomUUID().slice(0, 8)}`, files });
      gh.setRole(repo, 'maintainer', 'maintain');
      gh.setRole(repo, 'writer', 'write');
      gh.setRole(repo, 'triager', 'triage');
      gh.setRole(repo, 'reader', 'read');
      return repo;
    }

    async function completedCheck(repo: Repo, sha: string) {
      return gh.waitFor(
        () => {
          const check = gh.checkRuns(repo, { headSha: sha })[0];
          return check?.status === 'completed' ? check : undefined;
        },
        { timeoutMs: 90_000, message: `no completed check run on ${sha}\n${app.output().slice(-4000)}` },
      );
    }

    it('a maintainer runs a pull request\'s Dockerfile and gets the CIDs in a check run on its head', async () => {
      // The task is on the default branch already; the pull request by a writer leaves it alone.
      const repo = await newRepo({ 'README.md': 'archive\n', Dockerfile: helloDockerfile });
      await gh.commit(repo, 'docs', { 'README.md': 'archive, now with docs\n' });
      const { number } = await gh.openPullRequest(repo, { author: 'writer', head: 'docs' });
      const head = gh.headOf(repo, 'docs');

      const started = Date.now();
      const { delivery, commentId } = await gh.comment(repo, number, 'maintainer', '/run');
      expect(delivery.status).toBeLessThan(300);
      const check = await completedCheck(repo, head);
      const elapsed = Date.now() - started;
      console.info(`[measure] ${mode.name}: /run → completed check run in ${elapsed} ms`);

      expect(check.name).toBe('task-mgmt / default');
      expect(check.conclusion).toBe('success');
      expect(check.history.map((body) => body.status ?? 'queued')).toEqual(['queued', 'in_progress', 'completed']);
      const summary = check.output.summary ?? '';
      const root = /ipfs:\/\/(Qm[1-9A-HJ-NP-Za-km-z]{44})/.exec(summary)?.[1];
      expect(root, summary).toBeDefined();
      expect(summary).toContain(`https://gateway.example/ipfs/${root}`);
      // Kubo's published vector for "hello world\n" (ipfs add, CIDv0).
      expect(summary).toContain('QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o');
      expect(summary).toMatch(/`hello\.txt`/);
      expect(summary).toMatch(/`parts\/`/);
      expect(summary).toContain('exit code 0');
      expect(summary).toMatch(/\*\*Succeeded\*\* in [\d.]+ (ms|s)/);
      expect(check.output.text).toContain('building the archive');
      expect(check.externalId).toBeTruthy();
      expect(gh.reactionsOn(commentId).map((r) => r.content)).toContain('rocket');
      expect(gh.unhandled).toEqual([]);
      expect(gh.openapiViolations).toEqual([]);
    });

    it.each(['triager', 'reader'])('%s is refused with a reply that says why, and nothing runs', async (login) => {
      const repo = await newRepo({ Dockerfile: helloDockerfile });
      await gh.commit(repo, 'change', { 'notes.txt': 'x\n' });
      const { number } = await gh.openPullRequest(repo, { author: 'writer', head: 'change' });
      await gh.comment(repo, number, login, '/run');
      const reply = await gh.waitFor(() => gh.commentsOn(repo, number).find((c) => c.user.login === gh.botLogin), {
        timeoutMs: 20_000,
        message: 'no reply to a refused /run',
      });
      expect(reply.body).toMatch(new RegExp(`@${login} nothing was run: .*${login === 'triager' ? 'triage' : 'read'} role.*write or higher`));
      expect(gh.checkRuns(repo)).toEqual([]);
    });

    it('/run on an issue runs the default branch\'s HEAD', async () => {
      const repo = await newRepo({ Dockerfile: helloDockerfile });
      const head = gh.headOf(repo, repo.defaultBranch);
      const number = gh.createIssue(repo, { author: 'reader', title: 'please archive' });
      await gh.comment(repo, number, 'writer', '/run');
      const check = await completedCheck(repo, head);
      expect(check.conclusion).toBe('success');
      expect(check.headSha).toBe(head);
    });

    it('rejects a webhook with a bad signature and starts one run for a redelivered webhook', async () => {
      const repo = await newRepo({ Dockerfile: helloDockerfile });
      const number = gh.createIssue(repo, { author: 'writer', title: 'archive' });
      const forged = await gh.comment(repo, number, 'maintainer', '/run', { secret: 'not-the-secret' });
      expect(forged.delivery.status).toBeGreaterThanOrEqual(400);
      const unsigned = await gh.comment(repo, number, 'maintainer', '/run', { unsigned: true });
      expect(unsigned.delivery.status).toBeGreaterThanOrEqual(400);

      const first = await gh.comment(repo, number, 'maintainer', '/run');
      expect(first.delivery.status).toBeLessThan(300);
      const original = gh.deliveries.find((d) => d.deliveryId === first.delivery.deliveryId)!;
      const again = await gh.deliver(original.event, original.payload, { deliveryId: first.delivery.deliveryId });
      expect(again.status).toBeLessThan(300);

      await completedCheck(repo, gh.headOf(repo, repo.defaultBranch));
      // Give a wrongly accepted duplicate time to show up before counting.
      await new Promise((r) => setTimeout(r, 1500));
      expect(gh.checkRuns(repo)).toHaveLength(1);
      expect(gh.reactionsOn(forged.commentId)).toEqual([]);
    });

    it('a container that exits non-zero ends in failure with the log tail', async () => {
      const repo = await newRepo({ Dockerfile: failingDockerfile });
      const number = gh.createIssue(repo, { author: 'writer', title: 'archive' });
      await gh.comment(repo, number, 'writer', '/run');
      const check = await completedCheck(repo, gh.headOf(repo, repo.defaultBranch));
      expect(check.conclusion).toBe('failure');
      expect(check.output.summary).toContain('exit code 3');
      expect(check.output.summary).toContain('the task exited with code 3');
      expect(check.output.text).toContain('about to fail');
      expect(check.output.text).toContain('disk on fire');
    });
  });
}
