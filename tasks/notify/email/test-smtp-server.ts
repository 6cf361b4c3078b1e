/**
 * Starts the real SMTP server of `test-smtp-server.py` (Debian's python3-aiosmtpd, installed by
 * scripts/test-deps.sh) for the notify/email tests, and reads back the messages it accepted.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

/** The system interpreter: Debian's python3-aiosmtpd is installed for it, not for others on PATH. */
const python = '/usr/bin/python3';

export interface ReceivedMessage {
  mailFrom: string;
  rcptTos: string[];
  /** The login the client authenticated as, if it did. */
  login: string | null;
  /** Header names in lower case. */
  headers: Record<string, string>;
  text: string | null;
  html: string | null;
  raw: string;
}

export interface SmtpTestServer {
  port: number;
  /** Messages accepted so far, oldest first. */
  messages(): Promise<ReceivedMessage[]>;
  stop(): Promise<void>;
}

/**
 * Whether aiosmtpd is installed. In CI (CI=true) its absence fails the run; elsewhere the suite
 * skips with a loud message, as the other integration tests do.
 */
export function smtpServerAvailable(): boolean {
  const probe = spawnSync(python, ['-c', 'import aiosmtpd'], { stdio: 'ignore' });
  if (probe.status === 0) return true;
  const message = `notify/email tests need ${python} with aiosmtpd; run scripts/test-deps.sh`;
  if (process.env.CI === 'true') throw new Error(`${message} (CI=true: failing instead of skipping)`);
  console.warn(`\n!!! SKIPPING: ${message}.\n`);
  return false;
}

export async function startSmtpTestServer(): Promise<SmtpTestServer> {
  const dir = await mkdtemp(join(tmpdir(), 'task-mgmt-smtp-'));
  const child: ChildProcess = spawn(python, [join(import.meta.dirname, 'test-smtp-server.py'), dir], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));

  const port = await new Promise<number>((resolve, reject) => {
    let settled = false;
    const fail = (error: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      child.kill('SIGKILL');
      void rm(dir, { recursive: true, force: true });
      reject(new Error(`${error.message}\n${stderr}`));
    };
    const timer = setTimeout(() => fail(new Error('the SMTP test server did not start within 10 s')), 10_000);
    child.once('error', fail);
    child.once('exit', (code) => fail(new Error(`the SMTP test server exited with code ${code}`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const match = /^listening (\d+)$/.exec(line);
      if (!match || settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(Number(match[1]));
    });
  });

  return {
    port,
    async messages() {
      const names = (await readdir(dir)).filter((name) => name.endsWith('.json')).sort();
      return Promise.all(names.map(async (name) => JSON.parse(await readFile(join(dir, name), 'utf8')) as ReceivedMessage));
    },
    async stop() {
      // Closing its standard input stops the server; the kill is for one that hangs.
      child.stdin?.end();
      const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(timer);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
