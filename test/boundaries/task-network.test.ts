/**
 * Proves the boundary rules that keep task types off the network except through their context
 * (.dependency-cruiser.cjs, section 6): `npm run boundaries` passing on the repository says no
 * module breaks them, and this runs the same command with the same rules on a small fixture that
 * breaks each of them on purpose, to show that each would be caught.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { projectRoot } from '../support/app-process.js';

const run = promisify(execFile);
const fixture = join(import.meta.dirname, 'fixture');

async function cruise(): Promise<{ code: number; violations: string[] }> {
  const command = [join(projectRoot, 'node_modules', 'dependency-cruiser', 'bin', 'dependency-cruise.mjs'), 'src', 'tasks'];
  const options = ['--config', join(projectRoot, '.dependency-cruiser.cjs'), '--output-type', 'err'];
  try {
    await run(process.execPath, [...command, ...options], { cwd: fixture, timeout: 60_000 });
    return { code: 0, violations: [] };
  } catch (error) {
    const { code, stdout } = error as { code: number; stdout: string };
    const violations = stdout
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line.startsWith('error '))
      .map((line) => line.replace(/\S*node_modules\/nodemailer\/\S+/, 'nodemailer'))
      .sort();
    return { code, violations };
  }
}

describe('the network boundary of task types', () => {
  it('refuses a task type that imports sockets, DNS, nodemailer or the fetch and mailer modules, and a shared module that hands them on', async () => {
    const { code, violations } = await cruise();
    expect(code).not.toBe(0);
    expect(violations).toEqual(
      [
        'error task-types-no-raw-network: tasks/demo/fetcher/index.ts → net',
        'error task-types-no-raw-network: tasks/demo/fetcher/index.ts → http',
        'error task-types-no-raw-network: tasks/demo/fetcher/index.ts → https',
        'error task-types-no-dns: tasks/demo/fetcher/index.ts → dns',
        'error task-types-no-mailer: tasks/demo/mailer/index.ts → nodemailer',
        'error task-types-network-through-context: tasks/demo/fetcher/index.ts → tasks/shared/safe-fetch.ts',
        'error task-types-network-through-context: tasks/demo/mailer/index.ts → tasks/shared/smtp-mailer.ts',
        'error task-types-network-through-context: tasks/shared/relay.ts → tasks/shared/safe-fetch.ts',
      ].sort(),
    );
    // Allowed, and so not listed: the worker wiring both, the modules behind them using sockets,
    // a test helper building a fetch for its context, and a task type using only the context's fetch.
  });
});
