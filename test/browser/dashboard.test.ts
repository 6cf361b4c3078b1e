/**
 * The dashboard in a real browser: Debian's Chromium, headless, driven by playwright-core, against
 * the real app (`task-mgmt serve`, compiled), the fake GitHub (sign-in through its OAuth pages)
 * and a real Docker engine. Every page is checked with axe-core (no serious or critical
 * violation) and at 375 px wide (no horizontal scrolling). With DASHBOARD_SCREENSHOTS=1 it also
 * renews the screenshots in docs/ that the README shows.
 */
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeGitHub, type Repo } from '../fake-github/index.js';
import { projectRoot, startApp, type AppProcess } from '../support/app-process.js';
import { requireServices } from '../support/services.js';

const chromiumPath = '/usr/bin/chromium';
const dockerReady = await requireServices('docker');
const token = `svc-${randomUUID()}`;
if (!existsSync(chromiumPath)) console.warn(`\n*** the dashboard's browser tests are SKIPPED: ${chromiumPath} is missing (bash scripts/test-deps.sh installs it) ***\n`);
const axeSource = await readFile(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

const manifest = `version: 1
tasks:
  hello:
    description: says hello slowly
    dockerfile: Dockerfile
    params:
      greeting:
        default: hi
        pattern: "[a-z]+"
        description: a word in lower case
  slow:
    dockerfile: Slow.Dockerfile
`;
const dockerfile = 'FROM busybox\nCMD ["sh", "-c", "echo starting; sleep 4; echo said $TASK_PARAM_GREETING; echo done > /out/result.txt"]\n';
const slowDockerfile = 'FROM busybox\nCMD ["sh", "-c", "echo slow start; sleep 60"]\n';

describe.skipIf(!dockerReady || !existsSync(chromiumPath))('the dashboard in Chromium', () => {
  let gh: FakeGitHub;
  let app: AppProcess;
  let context: BrowserContext;
  let profile: string;
  let open: Repo;
  let secret: Repo;
  let secretRunId: string;

  beforeAll(async () => {
    gh = await FakeGitHub.start();
    open = await gh.createRepo({ owner: 'octo-org', name: `open-${randomUUID().slice(0, 8)}`, files: { 'task-mgmt.yml': manifest, Dockerfile: dockerfile, 'Slow.Dockerfile': slowDockerfile } });
    secret = await gh.createRepo({ owner: 'octo-org', name: `secret-${randomUUID().slice(0, 8)}`, private: true, files: { Dockerfile: 'FROM busybox\nCMD ["echo", "private"]\n' } });
    gh.setRole(open, 'alice', 'write');
    gh.setRole(secret, 'alice', 'write');
    gh.userToken('bob');
    app = await startApp(gh, { ...gh.oauthEnv(), API_TOKENS: token, WORKERS: '2' });
    const created = await fetch(`${app.url}/api/runs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ repo: secret.fullName }),
    });
    expect(created.status).toBe(201);
    secretRunId = ((await created.json()) as { runs: { id: string }[] }).runs[0]!.id;
    profile = await mkdtemp(join(tmpdir(), 'task-mgmt-chromium-'));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: chromiumPath,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      // axe-core is put into each page by the test; the pages' own policy allows only their script.
      bypassCSP: true,
      viewport: { width: 1280, height: 900 },
    });
  }, 120_000);

  afterAll(async () => {
    await context?.close();
    if (profile) await rm(profile, { recursive: true, force: true });
    await app?.stop();
    if (gh) {
      expect(gh.unhandled.map((r) => `${r.method} ${r.path}`)).toEqual([]);
      expect(gh.openapiViolations).toEqual([]);
      await gh.close();
    }
  });

  /** axe-core's serious and critical violations on the page as it is now. */
  async function accessibilityProblems(page: Page): Promise<string[]> {
    await page.addScriptTag({ content: axeSource });
    const violations = await page.evaluate(async () => {
      const result = await (globalThis as unknown as { axe: { run(): Promise<{ violations: { id: string; impact: string; nodes: { target: string[] }[] }[] }> } }).axe.run();
      return result.violations.map((v) => ({ id: v.id, impact: v.impact, targets: v.nodes.map((n) => n.target.join(' ')).slice(0, 3) }));
    });
    return violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => `${v.id} (${v.impact}) at ${v.targets.join(', ')}`);
  }

  /** Whether the page scrolls sideways at 375 px. */
  async function scrollsSideways(page: Page): Promise<boolean> {
    const before = page.viewportSize()!;
    await page.setViewportSize({ width: 375, height: 800 });
    const wide = await page.evaluate(() => {
      const view = globalThis as unknown as { innerWidth: number; document: { documentElement: { scrollWidth: number } } };
      return view.document.documentElement.scrollWidth > view.innerWidth;
    });
    await page.setViewportSize(before);
    return wide;
  }

  async function checkPage(page: Page, what: string): Promise<void> {
    expect(await accessibilityProblems(page), what).toEqual([]);
    expect(await scrollsSideways(page), `${what} scrolls sideways at 375 px`).toBe(false);
  }

  async function signIn(page: Page, login: string): Promise<void> {
    await context.clearCookies();
    await page.goto(`${app.url}/`);
    await expect.poll(() => page.locator('h1').textContent()).toBe('Sign in');
    await checkPage(page, 'sign-in page');
    await page.getByRole('link', { name: 'Sign in with GitHub' }).click();
    await page.waitForURL((url) => url.pathname === '/login/oauth/authorize');
    await page.getByLabel('Sign in as').fill(login);
    await page.getByRole('button', { name: 'Authorize' }).click();
    await page.waitForURL((url) => url.origin === app.url && url.pathname === '/');
    await expect.poll(() => page.locator('h1').textContent()).toBe('Runs');
    expect(await page.locator('.signout span').textContent()).toBe(`@${login}`);
  }

  it('signs alice in through GitHub, starts a run from the form (a refused one says why), and follows it live on the runs list and its page', async () => {
    const page = context.pages()[0] ?? (await context.newPage());
    await signIn(page, 'alice');
    await checkPage(page, 'runs page');
    // The private repository's run is listed for alice, who can read it.
    await expect.poll(() => page.locator(`#run-${secretRunId}`).count()).toBe(1);

    // A second tab keeps the runs list open; it must follow the new run without reloading.
    const list = await context.newPage();
    await list.goto(`${app.url}/`);
    await list.evaluate(() => {
      type Row = { id?: string; getAttribute?(name: string): string | null };
      const page = globalThis as unknown as {
        notReloaded: boolean;
        seen: string[];
        MutationObserver: new (callback: (records: { type: string; target: Row; addedNodes: ArrayLike<Row> }[]) => void) => { observe(node: unknown, options: unknown): void };
        document: { querySelector(selector: string): unknown };
      };
      page.notReloaded = true;
      page.seen = [];
      // Every state a row of the list takes, as the page changes it.
      new page.MutationObserver((records) => {
        const note = (row: Row) => {
          if (row.id?.startsWith('run-') && row.getAttribute) page.seen.push(`${row.id} ${row.getAttribute('data-state')}`);
        };
        for (const record of records) {
          if (record.type === 'attributes') note(record.target);
          else for (const row of Array.from(record.addedNodes)) note(row);
        }
      }).observe(page.document.querySelector('[data-runs]'), { childList: true, subtree: true, attributes: true, attributeFilter: ['data-state'] });
    });

    await page.goto(`${app.url}/start`);
    await checkPage(page, 'start page');
    await page.getByLabel('Repository').selectOption(open.fullName);
    await page.getByRole('button', { name: 'Show tasks' }).click();
    await page.getByLabel('Task').selectOption('hello');
    await page.getByRole('button', { name: 'Show parameters' }).click();
    await page.getByLabel('greeting').fill('Not Lower');
    await page.getByRole('button', { name: 'Start' }).click();
    const refusal = page.getByRole('alert');
    await expect.poll(() => refusal.textContent()).toMatch(/^Refused: .*greeting/);
    await checkPage(page, 'start page with a refusal');

    await page.getByLabel('greeting').fill('hello');
    await page.getByRole('button', { name: 'Start' }).click();
    await page.waitForURL(/\/runs\/[^/?]+\?done=started$/);
    const runId = decodeURIComponent(new URL(page.url()).pathname.split('/')[2]!);
    await checkPage(page, 'run page');
    // The log follows while the run goes on.
    await expect.poll(() => page.locator('[data-log]').textContent(), { timeout: 60_000 }).toContain('said hello');
    await expect.poll(() => page.locator('[data-state-cell]').textContent(), { timeout: 30_000 }).toBe('succeeded');
    await page.waitForLoadState('load');
    await expect.poll(() => page.locator('[data-log-search]').count()).toBe(1);
    await page.locator('[data-log-search]').fill('said hello');
    await expect.poll(() => page.locator('[data-log-matches]').textContent()).toBe('1 line matches');
    await expect.poll(() => page.getByRole('heading', { name: 'Outputs' }).count()).toBe(1);
    await expect.poll(() => page.locator('a.mono[href*="/ipfs/"]').count(), { timeout: 10_000 }).toBeGreaterThan(0);
    await checkPage(page, 'finished run page');
    const screenshots = process.env.DASHBOARD_SCREENSHOTS === '1';
    if (screenshots) {
      await mkdir(join(projectRoot, 'docs'), { recursive: true });
      await page.screenshot({ path: join(projectRoot, 'docs', 'dashboard-run.png'), fullPage: true });
    }

    // The list tab saw it appear and end, without a reload.
    await expect.poll(() => list.locator(`#run-${runId}`).getAttribute('data-state'), { timeout: 30_000 }).toBe('succeeded');
    expect(await list.evaluate(() => (globalThis as unknown as { notReloaded?: boolean }).notReloaded)).toBe(true);
    // It appeared queued or running (whichever the first look found) and went on to succeeded.
    const seen = await list.evaluate(() => (globalThis as unknown as { seen: string[] }).seen);
    expect(seen.filter((line) => line.startsWith(`run-${runId} `)).slice(-2)).toStrictEqual([`run-${runId} running`, `run-${runId} succeeded`]);
    if (screenshots) {
      await list.reload();
      await list.screenshot({ path: join(projectRoot, 'docs', 'dashboard-runs.png'), fullPage: true });
    }
    await list.close();

    // Re-run: the same use case as the check run's button, at the same commit.
    await page.goto(`${app.url}/runs/${encodeURIComponent(runId)}`);
    await page.getByRole('button', { name: 'Re-run' }).click();
    await page.waitForURL(/\/runs\/[^/?]+\?done=started$/);
    expect(decodeURIComponent(new URL(page.url()).pathname.split('/')[2]!)).not.toBe(runId);

    await page.goto(`${app.url}/repositories`);
    await checkPage(page, 'repositories page');
    expect(await page.getByRole('heading', { name: open.fullName }).count()).toBe(1);
    const badge = `${app.url}/badge/${open.owner}/${open.name}/hello.svg`;
    expect(await page.locator(`button[data-copy="${badge}"]`).count()).toBe(1);
  });

  it('cancels a running run with its button, which only someone allowed sees', async () => {
    const page = context.pages()[0]!;
    await page.goto(`${app.url}/start?repo=${encodeURIComponent(open.fullName)}&task=slow`);
    await page.getByRole('button', { name: 'Start' }).click();
    await page.waitForURL(/\/runs\/[^/?]+\?done=started$/);
    await expect.poll(() => page.locator('[data-log]').textContent(), { timeout: 60_000 }).toContain('slow start');
    await page.getByRole('button', { name: 'Cancel' }).click();
    await page.waitForURL(/\?done=cancelled$/);
    await expect.poll(() => page.locator('[data-state-cell]').textContent()).toBe('cancelled');
    expect(await page.getByRole('button', { name: 'Cancel' }).count()).toBe(0);
  });

  it('bob, who cannot read the private repository, sees none of its runs and gets 404 for its run page and badges', async () => {
    const page = context.pages()[0]!;
    await signIn(page, 'bob');
    expect(await page.locator(`#run-${secretRunId}`).count()).toBe(0);
    expect(await page.locator('tbody[data-runs] tr').count()).toBeGreaterThan(0);
    const response = await page.goto(`${app.url}/runs/${secretRunId}`);
    expect(response!.status()).toBe(404);
    await checkPage(page, 'not-found page');
    // No buttons for bob on the public repository's runs: he has no role there.
    await page.goto(`${app.url}/`);
    const openRun = page.locator('tbody[data-runs] tr a').first();
    await openRun.click();
    await page.waitForURL(/\/runs\//);
    expect(await page.locator('.actions button').count()).toBe(0);
    expect((await page.request.get(`${app.url}/badge/${secret.owner}/${secret.name}/default.svg`)).status()).toBe(404);
    expect((await page.request.get(`${app.url}/badge/${open.owner}/${open.name}/hello.svg`)).status()).toBe(200);
    // The API reads with the session cookie follow the same rule.
    expect((await page.request.get(`${app.url}/api/runs/${secretRunId}`)).status()).toBe(404);
  });
});
