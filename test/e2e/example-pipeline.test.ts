/**
 * The example in examples/wikipedia-pipeline, end to end through `/run`: kiwix/zim fetches a
 * small real ZIM from a local stand-in for download.kiwix.org, the example's busybox container
 * reports on it, files/identify types the report, and notify/email mails the CIDs to a real local
 * SMTP server. The repository gets the example's own files; only the Kiwix mirror is pointed at
 * the stand-in.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { smtpServerAvailable, startSmtpTestServer, type SmtpTestServer } from '../../tasks/notify/email/test-smtp-server.js';
import { FakeGitHub } from '../fake-github/index.js';
import type { CheckRunRecord } from '../fake-github/state.js';
import { projectRoot, startApp, type AppProcess } from '../support/app-process.js';
import { makeZim, startKiwixStandIn, zimToolsAvailable, type KiwixStandIn } from '../support/kiwix-stand-in.js';
import { requireServices } from '../support/services.js';

const ready = (await requireServices('docker')) && zimToolsAvailable() && smtpServerAvailable();

const exampleDir = join(projectRoot, 'examples', 'wikipedia-pipeline');
const book = 'wikipedia_en_100_nopic';
const zimName = `${book}_2024-06.zim`;
const gateway = 'https://gateway.example';
const taskNames = ['fetch', 'process', 'identify', 'notify'];

/** The root CID a finished check run reports for the task's outputs. */
function outputCid(check: CheckRunRecord): string {
  const match = /`ipfs:\/\/([A-Za-z0-9]+)`/.exec(check.output.summary ?? '');
  if (!match) throw new Error(`${check.name} reports no output CID:\n${check.output.summary}`);
  return match[1]!;
}

describe.skipIf(!ready)('examples/wikipedia-pipeline', () => {
  let work: string;
  let gh: FakeGitHub;
  let app: AppProcess;
  let kiwix: KiwixStandIn;
  let smtp: SmtpTestServer;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'example-pipeline-'));
    const zim = makeZim({ title: 'Wikipedia 100 (stand-in)', pages: 5 });
    kiwix = await startKiwixStandIn('wikipedia', { [zimName]: zim });
    smtp = await startSmtpTestServer();
    gh = await FakeGitHub.start();
    app = await startApp(gh, {
      // The stand-in is on loopback, which production refuses.
      ALLOW_PRIVATE_ADDRESSES: 'true',
      SMTP_URL: `smtp://127.0.0.1:${smtp.port}`,
      MAIL_FROM: 'task-mgmt@example.org',
      IPFS_GATEWAY_URL: gateway,
      WORKERS: '2',
    });
  });

  afterAll(async () => {
    await app?.stop();
    await gh?.close();
    await smtp?.stop();
    await kiwix?.close();
    if (work) await rm(work, { recursive: true, force: true });
  });

  /** The example's files, with the manifest's Kiwix mirror pointed at the stand-in. */
  async function exampleFiles(): Promise<Record<string, string>> {
    const files: Record<string, string> = {};
    for (const name of await readdir(exampleDir)) files[name] = await readFile(join(exampleDir, name), 'utf8');
    const original = `with: { name: ${book} }`;
    expect(files['task-mgmt.yml']).toContain(original);
    files['task-mgmt.yml'] = files['task-mgmt.yml']!.replace(original, `with: { name: ${book}, mirror: "${kiwix.mirror}" }`);
    return files;
  }

  it('runs fetch → process → identify → notify from one /run and mails the ZIM\'s and the report\'s CIDs', { timeout: 180_000 }, async () => {
    const repo = await gh.createRepo({ owner: 'octo-org', name: `wikipedia-${randomUUID().slice(0, 8)}`, files: await exampleFiles() });
    gh.setRole(repo, 'maintainer', 'maintain');
    const issue = gh.createIssue(repo, { author: 'maintainer', title: 'Archive Wikipedia 100' });

    const asked = Date.now();
    await gh.comment(repo, issue, 'maintainer', '/run');
    const checks = await gh.waitFor(
      () => {
        const all = gh.checkRuns(repo);
        return all.length >= taskNames.length && all.every((c) => c.status === 'completed') ? all : undefined;
      },
      { timeoutMs: 120_000, message: `the example pipeline did not finish within 120 s\n${app.output().slice(-4000)}` },
    );
    const finished = Date.now();

    const byTask = Object.fromEntries(checks.map((c) => [c.name.replace(/^task-mgmt \/ /, ''), c]));
    expect(Object.keys(byTask).sort()).toEqual([...taskNames].sort());
    for (const name of taskNames) {
      const check = byTask[name]!;
      expect(check.conclusion, `${name}: ${check.output.summary}\n${check.output.text ?? ''}`).toBe('success');
    }

    // fetch: the stand-in's listing resolved the name to the dated file, which was verified.
    const fetch = byTask.fetch!;
    expect(fetch.output.summary).toContain(`\`${zimName}\``);
    expect(fetch.output.summary).toContain('`zim.json`');
    expect(kiwix.requests).toEqual(expect.arrayContaining(['/zim/wikipedia/', `/zim/wikipedia/${zimName}.sha256`, `/zim/wikipedia/${zimName}`]));

    // process: the container read /in/fetch and checked the ZIM against fetch's zim.json.
    const process = byTask.process!;
    for (const file of ['report.txt', 'report.json', 'SHA256SUMS', 'mime-types.txt']) expect(process.output.summary).toContain(`\`${file}\``);
    expect(process.output.text).toContain(zimName);
    expect(process.output.text).toContain('(matches zim.json: true)');
    expect(process.output.text).toMatch(/ZIM version: [56]\.\d+/);

    // identify: the process step's report, typed by content.
    const identify = byTask.identify!;
    for (const file of ['filetypes.json', 'filetypes.csv', 'summary.json']) expect(identify.output.summary).toContain(`\`${file}\``);

    // notify: one mail, with both CIDs as ipfs:// and as gateway links.
    const fetchCid = outputCid(fetch);
    const processCid = outputCid(process);
    const messages = await smtp.messages();
    expect(messages).toHaveLength(1);
    const mail = messages[0]!;
    expect(mail.mailFrom).toBe('task-mgmt@example.org');
    expect(mail.rcptTos).toEqual(['maintainers@example.org']);
    expect(mail.headers.subject).toBe('Wikipedia 100 (English) is on IPFS');
    for (const cid of [fetchCid, processCid]) {
      expect(mail.text).toContain(`ipfs://${cid}`);
      expect(mail.text).toContain(`${gateway}/ipfs/${cid}`);
      expect(mail.html).toContain(`${gateway}/ipfs/${cid}`);
    }
    expect(mail.text).toContain(zimName);
    expect(mail.text).toContain('report.json');
    // identify's counts, as the metadata it recorded: report.json is JSON, the other three text.
    expect(mail.text).toContain('"application/json":1');
    expect(mail.text).toContain('"text/plain":3');

    const at = (iso: string | null) => (iso ? Date.parse(iso) : Number.NaN);
    const lastCompleted = Math.max(...checks.map((c) => at(c.completedAt)));
    for (const name of taskNames) {
      const check = byTask[name]!;
      console.info(`[measure] example pipeline: ${name} ran ${at(check.completedAt) - at(check.startedAt)} ms, done ${at(check.completedAt) - asked} ms after /run`);
    }
    console.info(`[measure] example pipeline: /run to the last completed check run: ${lastCompleted - asked} ms (seen by the test after ${finished - asked} ms)`);
  });
});
