/**
 * A stranger's webhook body, end to end against the real app process: a body over GitHub's
 * 25 MB cap is refused with 413 while it is being read, the app's memory stays near its idle
 * figure, /healthz keeps answering, and the log never carries the payload (README "Security
 * model", Webhooks).
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeGitHub } from '../fake-github/index.js';
import { startApp, type AppProcess } from '../support/app-process.js';

const MiB = 1024 * 1024;
/** What an attacker streams: far more than GitHub ever sends (its payloads are capped at 25 MB). */
const attackBytes = 300 * MiB;
/** The filler of every attack body: if it shows up in the log, the payload was logged. */
const marker = 'stranger-payload-';
/** Longest acceptable log line: a request line with its headers fits easily. */
const maxLogLine = 4096;
/** How much the app may grow while the attack lasts. */
const maxGrowthMiB = 100;
/**
 * How much the app may grow while many bodies under the cap arrive at once: the bodies it holds
 * (WEBHOOK_BODY_BUDGET, 100 MiB) about twice over — received chunks and the joined buffer; a wrong
 * signature is found while the body arrives, so it is never decoded — and the garbage collector's
 * slack, kept by the refused connections' buffers. About 250 MiB measured.
 */
const maxConcurrentGrowthMiB = 400;

function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = /^VmRSS:\s+(\d+) kB$/m.exec(status);
  if (!kib) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(kib[1]) / 1024;
}

interface Attack {
  /** The status the app answered, or undefined if it did not answer before the deadline. */
  status: number | undefined;
  /** Seconds from the first byte sent to the answer's headers. */
  answeredAfter: number | undefined;
  /** Body bytes written when the answer came. */
  sentWhenAnswered: number | undefined;
  sent: number;
}

/**
 * POSTs a body of `total` bytes to the webhook URL with a wrong signature, generated chunk by
 * chunk (never held in memory), over a plain socket so nothing but the app decides when it ends:
 * it keeps sending after an answer, as an attacker would, until the body is sent, the app closes
 * the connection, or the deadline passes.
 */
function attack(url: string, options: { total: number; declaredLength?: number; deadlineMs: number }): Promise<Attack> {
  const chunk = Buffer.from(marker.repeat(Math.ceil((64 * 1024) / marker.length)).slice(0, 64 * 1024));
  const head = Buffer.from('{"action":"created","filler":"');
  const target = new URL(url);
  const chunked = options.declaredLength === undefined;
  const request =
    `POST ${target.pathname} HTTP/1.1\r\nHost: ${target.host}\r\nContent-Type: application/json\r\n` +
    `X-GitHub-Event: issue_comment\r\nX-GitHub-Delivery: ${randomUUID()}\r\nX-Hub-Signature-256: sha256=${'0'.repeat(64)}\r\n` +
    (chunked ? 'Transfer-Encoding: chunked\r\n' : `Content-Length: ${options.declaredLength}\r\n`) +
    '\r\n';
  return new Promise((resolve) => {
    const started = performance.now();
    const result: Attack = { status: undefined, answeredAfter: undefined, sentWhenAnswered: undefined, sent: 0 };
    let answer = '';
    let ended = false;
    const finish = () => {
      if (ended) return;
      ended = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(finish, options.deadlineMs);
    const socket = connect({ host: target.hostname, port: Number(target.port) });
    socket.on('data', (data: Buffer) => {
      if (result.status !== undefined) return;
      answer += data.toString('latin1');
      const status = /^HTTP\/1\.1 (\d{3}) /.exec(answer);
      if (!status) return;
      result.status = Number(status[1]);
      result.answeredAfter = (performance.now() - started) / 1000;
      result.sentWhenAnswered = result.sent;
      if (result.sent >= options.total) finish();
    });
    // A refusal may close the connection while the body is still being sent.
    socket.on('error', finish);
    socket.on('close', finish);
    const send = (data: Buffer): boolean => {
      result.sent += data.length;
      if (!chunked) return socket.write(data);
      socket.write(`${data.length.toString(16)}\r\n`);
      socket.write(data);
      return socket.write('\r\n');
    };
    const pump = () => {
      while (!ended && result.sent < options.total) {
        const part = Math.min(chunk.length, options.total - result.sent);
        if (!send(part === chunk.length ? chunk : chunk.subarray(0, part))) {
          socket.once('drain', pump);
          return;
        }
      }
      if (ended) return;
      if (chunked) socket.write('0\r\n\r\n');
      if (result.status !== undefined) finish();
    };
    socket.once('connect', () => {
      socket.write(request);
      send(head);
      pump();
    });
  });
}

/** Samples the app's RSS and asks /healthz over and over while `during` runs. */
async function watch<T>(app: AppProcess, during: () => Promise<T>) {
  let peakMiB = rssMiB(app.pid);
  const sampler = setInterval(() => {
    try {
      peakMiB = Math.max(peakMiB, rssMiB(app.pid));
    } catch {
      // the process is gone: the assertions below say so
    }
  }, 20);
  const health = { answered: 0, failed: 0, slowestMs: 0 };
  let attacking = true;
  const prober = (async () => {
    while (attacking) {
      const started = performance.now();
      try {
        const response = await fetch(`${app.url}/healthz`, { signal: AbortSignal.timeout(2000) });
        await response.text();
        if (response.ok) health.answered += 1;
        else health.failed += 1;
      } catch {
        health.failed += 1;
      }
      health.slowestMs = Math.max(health.slowestMs, Math.round(performance.now() - started));
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  try {
    const result = await during();
    // Whatever the app still does with the body (verify, log) happens after the answer: keep
    // watching until its log, but for the /healthz requests, has been quiet for a second.
    const logged = () => app.output().split('\n').filter((line) => !line.includes('/healthz')).join('\n').length;
    let length = -1;
    for (const deadline = Date.now() + 60_000; logged() !== length && Date.now() < deadline; ) {
      length = logged();
      await new Promise((r) => setTimeout(r, 1000));
    }
    return { result, peakMiB, health };
  } finally {
    attacking = false;
    clearInterval(sampler);
    await prober;
  }
}

function logSince(app: AppProcess, offset: number) {
  const text = app.output().slice(offset);
  let longest = 0;
  for (const line of text.split('\n')) longest = Math.max(longest, line.length);
  return { longest, hasPayload: text.includes(marker) };
}

describe('webhook bodies from strangers', () => {
  let gh: FakeGitHub;

  beforeAll(async () => {
    gh = await FakeGitHub.start();
  });

  afterAll(async () => {
    await gh?.close();
  });

  async function idleMiB(app: AppProcess): Promise<number> {
    const samples: number[] = [];
    for (let i = 0; i < 5; i += 1) {
      samples.push(rssMiB(app.pid));
      await new Promise((r) => setTimeout(r, 50));
    }
    return Math.max(...samples);
  }

  /** A /run comment on a new pull request becomes a queued check run. */
  async function normalWebhookWorks(app: AppProcess): Promise<void> {
    const repo = await gh.createRepo({ owner: 'octo-org', name: `limits-${randomUUID().slice(0, 8)}`, files: { Dockerfile: 'FROM busybox\nCMD true\n' } });
    gh.setRole(repo, 'maintainer', 'maintain');
    await gh.commit(repo, 'change', { 'README.md': 'hello\n' });
    const { number } = await gh.openPullRequest(repo, { author: 'maintainer', head: 'change' });
    const { delivery } = await gh.comment(repo, number, 'maintainer', '/run');
    expect(delivery.status).toBe(200);
    const sha = gh.headOf(repo, 'change');
    const queued = await gh.waitFor(() => gh.checkRuns(repo, { headSha: sha })[0], {
      timeoutMs: 20_000,
      message: `no check run for the /run after the attack\n${app.output().slice(-2000)}`,
    });
    expect(queued.status).toBe('queued');
  }

  for (const [name, declared] of [
    ['a 300 MB chunked body with a bad signature', undefined],
    ['a declared Content-Length of 300 MB with a bad signature', attackBytes],
  ] as const) {
    it(`${name}: 413 at once, memory near idle, /healthz answering, no payload in the log`, { timeout: 180_000 }, async () => {
      // A fresh app each time, so one attack's memory and log do not count toward the next.
      const app = await startApp(gh, { WORKERS: '0' });
      try {
        const idle = await idleMiB(app);
        const logOffset = app.output().length;
        const { result, peakMiB, health } = await watch(app, () =>
          attack(app.webhookUrl, { total: attackBytes, ...(declared !== undefined ? { declaredLength: declared } : {}), deadlineMs: 60_000 }),
        );
        const log = logSince(app, logOffset);
        const figures =
          `answered ${result.status ?? 'nothing'} after ${result.answeredAfter?.toFixed(2) ?? '-'} s with ${((result.sentWhenAnswered ?? result.sent) / MiB).toFixed(1)} MiB sent; ` +
          `RSS idle ${idle.toFixed(0)} MiB, peak ${peakMiB.toFixed(0)} MiB; /healthz ${health.answered} answered, ${health.failed} failed, slowest ${health.slowestMs} ms; ` +
          `longest log line ${log.longest} chars, payload in log: ${log.hasPayload}`;
        expect.soft(result.status, figures).toBe(413);
        expect.soft(result.answeredAfter ?? Infinity, `413 within 3 s — ${figures}`).toBeLessThan(3);
        // Refused while reading: no more than GitHub's cap (and socket buffers) went in first.
        expect.soft(result.sentWhenAnswered ?? Infinity, `refused before all was read — ${figures}`).toBeLessThan(40 * MiB);
        // …and the app closed the connection rather than reading (or stalling on) the rest.
        expect.soft(result.sent, `bytes sent before the app closed the connection — ${figures}`).toBeLessThan(attackBytes);
        expect.soft(peakMiB - idle, `RSS growth in MiB — ${figures}`).toBeLessThan(maxGrowthMiB);
        expect.soft(health.failed, `/healthz failures — ${figures}`).toBe(0);
        expect.soft(health.answered, `/healthz answers — ${figures}`).toBeGreaterThan(0);
        expect.soft(health.slowestMs, `slowest /healthz in ms — ${figures}`).toBeLessThan(1000);
        expect.soft(log.longest, `longest log line — ${figures}`).toBeLessThan(maxLogLine);
        expect.soft(log.hasPayload, `payload in the log — ${figures}`).toBe(false);
        await normalWebhookWorks(app);
      } finally {
        await app.stop();
      }
    });
  }

  it('many bodies just under the cap at once share one budget: the app grows by a bounded amount, refuses the rest with 503, and takes webhooks after', { timeout: 180_000 }, async () => {
    const app = await startApp(gh, { WORKERS: '0' });
    try {
      const idle = await idleMiB(app);
      const logOffset = app.output().length;
      const bodies = 24;
      const { result, peakMiB, health } = await watch(app, () =>
        Promise.all(Array.from({ length: bodies }, () => attack(app.webhookUrl, { total: 24 * MiB, declaredLength: 24 * MiB, deadlineMs: 60_000 }))),
      );
      const statuses = result.map((answer) => answer.status ?? 0).sort();
      const figures = `${bodies} bodies of 24 MiB at once answered ${statuses.join(', ')}; RSS idle ${idle.toFixed(0)} MiB, peak ${peakMiB.toFixed(0)} MiB; /healthz ${health.answered} answered, ${health.failed} failed`;
      // The budget (100 MiB by default) holds about four at a time; the others are refused while they are read.
      expect.soft(statuses.filter((status) => status === 503).length, figures).toBeGreaterThan(0);
      expect.soft(statuses.every((status) => status === 400 || status === 503), figures).toBe(true);
      expect.soft(peakMiB - idle, `RSS growth in MiB — ${figures}`).toBeLessThan(maxConcurrentGrowthMiB);
      expect.soft(health.failed, `/healthz failures — ${figures}`).toBe(0);
      const refusals = app.output().slice(logOffset).split('\n').filter((line) => line.includes('webhook body refused'));
      expect.soft(refusals.length, figures).toBe(statuses.filter((status) => status === 503).length);
      expect.soft(logSince(app, logOffset).hasPayload, figures).toBe(false);
      await normalWebhookWorks(app);
    } finally {
      await app.stop();
    }
  });

  it('a webhook sent with 16 KB of junk headers is logged in one short line without a header value', async () => {
    const app = await startApp(gh, { WORKERS: '0' });
    try {
      const logOffset = app.output().length;
      const junk = 'junk-header-value-';
      const headers: Record<string, string> = { 'x-request-id': `${junk}${'r'.repeat(1500)}` };
      for (let i = 0; i < 90; i += 1) headers[`x-junk-${i}`] = `${junk}${i}-${'j'.repeat(130)}`;
      const delivery = randomUUID();
      const response = await fetch(`${app.webhookUrl}?token=in-the-query`, {
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/json', 'x-github-event': 'issue_comment', 'x-github-delivery': delivery, 'x-hub-signature-256': `sha256=${'0'.repeat(64)}` },
        body: '{}',
      });
      expect(response.status).toBe(400);
      await new Promise((r) => setTimeout(r, 500));
      const lines = app.output().slice(logOffset).split('\n').filter(Boolean);
      for (const line of lines) expect(line.length, line.slice(0, 300)).toBeLessThan(1024);
      expect(lines.join('\n')).not.toContain(junk);
      expect(lines.join('\n')).not.toContain('in-the-query');
      const logged = lines.map((line) => JSON.parse(line) as Record<string, unknown>).find((entry) => entry.name === 'http' && entry.deliveryId === delivery);
      expect(logged).toMatchObject({ method: 'POST', path: '/api/github/webhooks', status: 400, event: 'issue_comment' });
    } finally {
      await app.stop();
    }
  });

  it('a body just over the cap is refused and logged by delivery, event and size; a normal webhook still works after', async () => {
    const app = await startApp(gh, { WORKERS: '0' });
    try {
      const logOffset = app.output().length;
      const result = await attack(app.webhookUrl, { total: 25 * MiB + 1, deadlineMs: 30_000 });
      expect(result.status).toBe(413);
      await new Promise((r) => setTimeout(r, 500));
      const text = app.output().slice(logOffset);
      expect(text).not.toContain(marker);
      const refusal = text.split('\n').find((line) => line.includes('webhook body refused'));
      expect(refusal, 'a log line says the body was refused').toBeDefined();
      expect(JSON.parse(refusal!)).toMatchObject({ event: 'issue_comment', deliveryId: expect.any(String), bytes: expect.any(Number) });
      await normalWebhookWorks(app);
    } finally {
      await app.stop();
    }
  });
});
