import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { PermanentError, RetryableError } from '../../../src/ports/errors.js';
import type { TaskContext, TaskInput, TaskSettings } from '../../../src/ports/task-type.js';
import { smtpMailer } from '../../shared/smtp-mailer.js';
import { notifyEmail, notifyEmailParams, type EmailRecord, type NotifyEmailParams } from './index.js';
import { smtpServerAvailable, startSmtpTestServer, type ReceivedMessage, type SmtpTestServer } from './test-smtp-server.js';

const gatewayUrl = 'https://gateway.example';

const fetchInput = (dir: string): TaskInput => ({
  dir,
  cid: 'QmFetchRootCid1111111111111111111111111111111111',
  files: [{ name: 'wikipedia_en_all.zim', cid: 'QmZimFileCid22222222222222222222222222222222222', size: 3 * 1024 * 1024, kind: 'file' }],
  metadata: { title: 'Wikipedia (English)', language: 'eng' },
});

const processInput = (dir: string): TaskInput => ({
  dir,
  cid: 'bafybeiprocessrootcid3333333333333333333333333333333333333',
  files: [
    { name: 'report.csv', cid: 'bafkreireportcid44444444444444444444444444444444444444444', size: 512, kind: 'file' },
    { name: 'pages', cid: 'bafybeipagescid555555555555555555555555555555555555555555', size: 0, kind: 'directory' },
  ],
  metadata: {},
});

interface Harness {
  ctx: TaskContext;
  logs: string[];
  outDir: string;
}

const tempDirs: string[] = [];

async function harness(options: { settings?: Partial<TaskSettings>; inputs?: (dir: string) => Record<string, TaskInput>; signal?: AbortSignal } = {}): Promise<Harness> {
  const root = await mkdtemp(join(tmpdir(), 'task-mgmt-notify-email-'));
  tempDirs.push(root);
  const logs: string[] = [];
  const refuse = (what: string) => () => {
    throw new Error(`notify/email must not use ${what}`);
  };
  const ctx: TaskContext = {
    runId: 'run-42',
    signal: options.signal ?? new AbortController().signal,
    log: (line) => logs.push(line),
    progress: () => {},
    ipfs: { addPath: refuse('IPFS'), close: refuse('IPFS') },
    executor: { execute: refuse('the executor') },
    outDir: root,
    scratchDir: root,
    sourceDir: root,
    inputs: options.inputs ? options.inputs(root) : { fetch: fetchInput(root), process: processInput(root) },
    limits: { memoryBytes: 1 << 30, nanoCpus: 1e9, pidsLimit: 64, timeoutMs: 60_000 },
    env: { TASK_RUN_ID: 'run-42' },
    settings: { allowPrivateAddresses: false, gatewayUrl, ...options.settings },
    fetch: { get: refuse('the network') },
    // The worker's mailer, as it builds it when SMTP_URL is set.
    ...(options.settings?.smtpUrl ? { mail: smtpMailer(options.settings.smtpUrl) } : {}),
  };
  return { ctx, logs, outDir: root };
}

function params(input: unknown): NotifyEmailParams {
  return notifyEmailParams.parse(input);
}

async function emailJson(outDir: string): Promise<EmailRecord> {
  return JSON.parse(await readFile(join(outDir, 'email.json'), 'utf8')) as EmailRecord;
}

function closedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

afterEach(async () => {
  await Promise.all(tempDirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

describe('notify/email parameters', () => {
  const cases: [string, unknown, RegExp | null][] = [
    ['one recipient', { to: ['a@example.org'] }, null],
    ['recipients, subject and cc', { to: ['a@example.org', 'b@example.org'], subject: 'Done', cc: ['c@example.org'] }, null],
    ['no to', {}, /to must be a list of email addresses/],
    ['empty to', { to: [] }, /to needs at least one address/],
    ['51 recipients', { to: Array.from({ length: 51 }, (_, i) => `u${i}@example.org`) }, /to takes at most 50 addresses/],
    ['not an address', { to: ['maintainers'] }, /"maintainers" is not an email address/],
    ['header injection', { to: ['a@example.org\r\nBcc: x@example.org'] }, /is not an email address/],
    ['bad cc', { to: ['a@example.org'], cc: ['nope'] }, /"nope" is not an email address/],
    ['empty subject', { to: ['a@example.org'], subject: '  ' }, /subject must not be empty/],
    ['two-line subject', { to: ['a@example.org'], subject: 'a\nBcc: x@example.org' }, /subject must be one line/],
    ['unknown key', { to: ['a@example.org'], bcc: ['b@example.org'] }, /unknown parameter bcc: notify\/email takes to, subject and cc/],
  ];
  it.each(cases)('%s', (_name, input, error) => {
    const result = notifyEmailParams.safeParse(input);
    if (error === null) {
      expect(result.success).toBe(true);
    } else {
      expect(result.success).toBe(false);
      expect(result.error?.issues.map((issue) => issue.message).join('; ')).toMatch(error);
    }
  });

  it('describes itself as the built-in types table says', () => {
    expect(notifyEmail.name).toBe('notify/email');
    expect(notifyEmail.network).toBe(false);
  });
});

describe('notify/email without a server', () => {
  it('fails clearly when SMTP_URL is not configured', async () => {
    const { ctx, outDir } = await harness();
    const run = notifyEmail.run(ctx, params({ to: ['a@example.org'] }));
    await expect(run).rejects.toThrow(PermanentError);
    await expect(run).rejects.toThrow('notify/email needs SMTP_URL to be configured');
    expect(await readdir(outDir)).toEqual([]);
  });

  it('refuses a URL that is not SMTP without echoing it', async () => {
    const { ctx } = await harness({ settings: { smtpUrl: 'http://user:hunter2@127.0.0.1:25' } });
    const error = await notifyEmail.run(ctx, params({ to: ['a@example.org'] })).catch((e: unknown) => e);
    expect(String(error)).toMatch(/SMTP_URL must be smtp:\/\/host\[:port\] or smtps:\/\/host\[:port\]/);
    expect(inspect(error, { depth: 10 })).not.toContain('hunter2');
  });

  it('fails quickly and retryably when nothing listens on the SMTP port, without the password', async () => {
    const port = await closedPort();
    const { ctx, logs, outDir } = await harness({ settings: { smtpUrl: `smtp://user:hunter2@127.0.0.1:${port}` } });
    const started = Date.now();
    const error = await notifyEmail.run(ctx, params({ to: ['a@example.org'] })).catch((e: unknown) => e);
    expect(Date.now() - started).toBeLessThan(2000);
    expect(error).toBeInstanceOf(RetryableError);
    expect(String(error)).toMatch(new RegExp(`could not reach the SMTP server smtp://user:\\*\\*\\*@127\\.0\\.0\\.1:${port}: .*ECONNREFUSED`));
    expect(inspect(error, { depth: 10 })).not.toContain('hunter2');
    expect(logs.join('\n')).toContain(`smtp://user:***@127.0.0.1:${port}`);
    expect(logs.join('\n')).not.toContain('hunter2');
    expect(await readdir(outDir)).toEqual([]);
  });

  it('stops at once when the run is already cancelled', async () => {
    const controller = new AbortController();
    controller.abort(new Error('cancelled by the test'));
    const { ctx } = await harness({ settings: { smtpUrl: 'smtp://127.0.0.1:1' }, signal: controller.signal });
    await expect(notifyEmail.run(ctx, params({ to: ['a@example.org'] }))).rejects.toThrow('cancelled by the test');
  });
});

describe.skipIf(!smtpServerAvailable())('notify/email with a real SMTP server', () => {
  let server: SmtpTestServer;
  let smtpUrl: string;

  beforeAll(async () => {
    server = await startSmtpTestServer();
    smtpUrl = `smtp://127.0.0.1:${server.port}`;
  });

  afterAll(async () => {
    await server?.stop();
  });

  async function received(messageId: unknown): Promise<ReceivedMessage> {
    const found = (await server.messages()).find((message) => message.headers['message-id'] === messageId);
    if (!found) throw new Error(`the server has no message ${String(messageId)}`);
    return found;
  }

  it('mails every CID and gateway link in both bodies, with the default subject', async () => {
    const { ctx, logs, outDir } = await harness({ settings: { smtpUrl } });
    const result = await notifyEmail.run(ctx, params({ to: ['maintainers@example.org', 'second@example.org'], cc: ['watcher@example.org'] }));

    expect(result.state ?? 'succeeded').toBe('succeeded');
    expect(result.metadata).toEqual({
      messageId: expect.stringMatching(/^<.+@.+>$/),
      accepted: ['maintainers@example.org', 'second@example.org', 'watcher@example.org'],
      rejected: [],
    });
    const message = await received(result.metadata?.messageId);
    expect(message.mailFrom).toBe('task-mgmt@localhost');
    expect(message.rcptTos).toEqual(['maintainers@example.org', 'second@example.org', 'watcher@example.org']);
    expect(message.headers.subject).toBe('task-mgmt run run-42: 2 outputs on IPFS');
    expect(message.headers.cc).toBe('watcher@example.org');
    expect(message.headers['auto-submitted']).toBe('auto-generated');
    expect(message.headers['x-task-mgmt-run']).toBe('run-42');

    const text = message.text ?? '';
    const html = message.html ?? '';
    for (const input of Object.values(ctx.inputs)) {
      for (const body of [text, html]) {
        expect(body).toContain(`ipfs://${input.cid}`);
        expect(body).toContain(`${gatewayUrl}/ipfs/${input.cid}`);
        for (const file of input.files) {
          expect(body).toContain(file.name);
          expect(body).toContain(file.cid);
          expect(body).toContain(`${gatewayUrl}/ipfs/${file.cid}`);
        }
      }
    }
    for (const body of [text, html]) {
      expect(body).toContain('fetch');
      expect(body).toContain('process');
      expect(body).toContain('3.0 MiB');
      expect(body).toContain('512 B');
      expect(body).toContain('Wikipedia (English)');
    }
    expect(html).toContain(`<a href="${gatewayUrl}/ipfs/${ctx.inputs.fetch?.cid}">`);

    expect(await emailJson(outDir)).toEqual({
      messageId: result.metadata?.messageId,
      from: 'task-mgmt@localhost',
      to: ['maintainers@example.org', 'second@example.org'],
      cc: ['watcher@example.org'],
      subject: 'task-mgmt run run-42: 2 outputs on IPFS',
      accepted: ['maintainers@example.org', 'second@example.org', 'watcher@example.org'],
      rejected: [],
    });
    expect(logs.join('\n')).toContain(`accepted for maintainers@example.org`);
  });

  it('uses the subject and sender it is given', async () => {
    const { ctx, outDir } = await harness({ settings: { smtpUrl, mailFrom: 'archive-bot@example.org' }, inputs: (dir) => ({ fetch: fetchInput(dir) }) });
    const result = await notifyEmail.run(ctx, params({ to: ['a@example.org'], subject: 'Wikipedia dump is on IPFS' }));
    const message = await received(result.metadata?.messageId);
    expect(message.headers.subject).toBe('Wikipedia dump is on IPFS');
    expect(message.headers.from).toBe('archive-bot@example.org');
    expect(message.mailFrom).toBe('archive-bot@example.org');
    expect((await emailJson(outDir)).subject).toBe('Wikipedia dump is on IPFS');
  });

  it('counts one output, or none, in the default subject', async () => {
    const one = await harness({ settings: { smtpUrl }, inputs: (dir) => ({ fetch: fetchInput(dir) }) });
    const oneResult = await notifyEmail.run(one.ctx, params({ to: ['a@example.org'] }));
    expect((await received(oneResult.metadata?.messageId)).headers.subject).toBe('task-mgmt run run-42: 1 output on IPFS');

    const none = await harness({ settings: { smtpUrl }, inputs: () => ({}) });
    const noneResult = await notifyEmail.run(none.ctx, params({ to: ['a@example.org'] }));
    const message = await received(noneResult.metadata?.messageId);
    expect(message.headers.subject).toBe('task-mgmt run run-42: 0 outputs on IPFS');
    expect(message.text).toContain('no outputs to list');
  });

  it('escapes hostile names and metadata in the HTML body and keeps them on one line in the text', async () => {
    const hostile = '<script>alert("x")</script>&.txt';
    const { ctx } = await harness({
      settings: { smtpUrl },
      inputs: (dir) => ({
        '<b>fetch</b>': {
          dir,
          cid: 'QmHostileRoot',
          files: [
            { name: hostile, cid: 'QmHostileFile', size: 1, kind: 'file' },
            { name: 'evil\nipfs://QmForged', cid: 'QmNewline', size: 2, kind: 'file' },
          ],
          metadata: { title: '<img src=x onerror=alert(1)>', '<i>key</i>': { nested: '</dd><script>' } },
        },
      }),
    });
    const result = await notifyEmail.run(ctx, params({ to: ['a@example.org'] }));
    const message = await received(result.metadata?.messageId);
    const html = message.html ?? '';
    expect(html).not.toMatch(/<script|<img|<b>|<i>|<\/dd><script/i);
    expect(html).toContain('&#60;script&#62;alert(&#34;x&#34;)&#60;/script&#62;&#38;.txt');
    expect(html).toContain('&#60;img src=x onerror=alert(1)&#62;');
    expect(html).toContain('&#60;b&#62;fetch&#60;/b&#62;');
    expect(html).toContain(`href="${gatewayUrl}/ipfs/QmHostileFile?filename=%3Cscript%3Ealert(%22x%22)%3C%2Fscript%3E%26.txt"`);
    const text = message.text ?? '';
    expect(text).toContain(hostile);
    expect(text).toContain('evil\\u000aipfs://QmForged');
    expect(text.split('\n').some((line) => line.trim().startsWith('ipfs://QmForged'))).toBe(false);
  });

  it('lists the first 100 files of a large output and points to the folder for the rest', async () => {
    const files = Array.from({ length: 30_000 }, (_, i) => ({ name: `file-${i}.bin`, cid: `QmFile${i}`, size: i, kind: 'file' as const }));
    const { ctx } = await harness({
      settings: { smtpUrl },
      inputs: (dir) => ({ identify: { dir, cid: 'QmLargeRoot', files, metadata: { count: 30_000n, nested: { files: 30_000 } } } }),
    });
    const result = await notifyEmail.run(ctx, params({ to: ['a@example.org'] }));
    const message = await received(result.metadata?.messageId);
    for (const body of [message.text ?? '', message.html ?? '']) {
      expect(body).toContain('QmFile99?');
      expect(body).not.toContain('QmFile100?');
      expect(body).toContain('… and 29900 more (see the folder on the gateway)');
      expect(body).toContain('30000');
    }
    expect(message.raw.length).toBeLessThan(200_000);
  });

  it('logs in with the URL password and never shows it in logs, results or email.json', async () => {
    const { ctx, logs, outDir } = await harness({ settings: { smtpUrl: `smtp://user:hunter2@127.0.0.1:${server.port}` } });
    const result = await notifyEmail.run(ctx, params({ to: ['a@example.org'] }));
    const message = await received(result.metadata?.messageId);
    expect(message.login).toBe('user');
    expect(logs.join('\n')).toContain(`smtp://user:***@127.0.0.1:${server.port}`);
    expect(logs.join('\n')).not.toContain('hunter2');
    expect(JSON.stringify(result)).not.toContain('hunter2');
    expect(await readFile(join(outDir, 'email.json'), 'utf8')).not.toContain('hunter2');
    expect(message.raw).not.toContain('hunter2');
  });

  it('fails with the server reply when the login is refused, without the password', async () => {
    const { ctx, logs } = await harness({ settings: { smtpUrl: `smtp://user:wrong-s3cret@127.0.0.1:${server.port}` } });
    const error = await notifyEmail.run(ctx, params({ to: ['a@example.org'] })).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PermanentError);
    expect(String(error)).toMatch(/the SMTP server smtp:\/\/user:\*\*\*@127\.0\.0\.1:\d+ refused the login: 535/);
    expect(inspect(error, { depth: 10 })).not.toContain('wrong-s3cret');
    expect(logs.join('\n')).not.toContain('wrong-s3cret');
  });

  it('fails with the server reply when it refuses a recipient, and records who got the mail', async () => {
    const { ctx, logs, outDir } = await harness({ settings: { smtpUrl } });
    const result = await notifyEmail.run(ctx, params({ to: ['ok@example.org', 'refuse-me@example.org'] }));
    expect(result.state).toBe('failed');
    expect(result.error).toMatch(/refused 1 of 2 recipients: refuse-me@example\.org \(550 5\.1\.1 <refuse-me@example\.org>: no such mailbox here\)/);
    expect(result.metadata).toMatchObject({ accepted: ['ok@example.org'], rejected: ['refuse-me@example.org'] });
    expect((await received(result.metadata?.messageId)).rcptTos).toEqual(['ok@example.org']);
    expect((await emailJson(outDir)).rejected).toEqual(['refuse-me@example.org']);
    expect(logs.join('\n')).toContain('550 5.1.1');
  });

  it('fails permanently with the server reply when it refuses every recipient', async () => {
    const before = (await server.messages()).length;
    const { ctx, outDir } = await harness({ settings: { smtpUrl } });
    const error = await notifyEmail.run(ctx, params({ to: ['refuse@example.org'] })).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PermanentError);
    expect(String(error)).toMatch(/refused every recipient: refuse@example\.org \(550 5\.1\.1 <refuse@example\.org>: no such mailbox here\)/);
    expect((await server.messages()).length).toBe(before);
    expect(await readdir(outDir)).toEqual([]);
  });

  it('stops promptly when the run is cancelled mid-send, and sends nothing', async () => {
    const before = (await server.messages()).length;
    const controller = new AbortController();
    const { ctx } = await harness({ settings: { smtpUrl }, signal: controller.signal });
    const started = Date.now();
    setTimeout(() => controller.abort(new Error('run cancelled')), 300);
    // The server waits 30 s before answering RCPT for "slow" recipients.
    await expect(notifyEmail.run(ctx, params({ to: ['slow@example.org'] }))).rejects.toThrow('run cancelled');
    expect(Date.now() - started).toBeLessThan(3000);
    expect((await server.messages()).length).toBe(before);
  });
});
