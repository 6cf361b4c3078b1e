import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseEnv } from 'node:util';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../config.js';
import { readAppManifest, registrationHandler, type RegistrationOptions } from './app-registration.js';
import { registrationForm } from '../../test/support/registration-form.js';

const hostile = `It's "quoted" & <b>bold</b> &amp; &#39; </button></form><script>alert(1)</script> '' done`;

let dir: string;
let servers: Server[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'registration-'));
});

afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => new Promise((resolve) => server.close(resolve))));
  await rm(dir, { recursive: true, force: true });
});

async function listen(handler: (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => Promise<boolean> | boolean): Promise<string> {
  const server = createServer((req, res) => {
    void Promise.resolve(handler(req, res)).then((handled) => {
      if (!handled) res.writeHead(404).end();
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address() as { port: number };
  return `http://127.0.0.1:${address.port}`;
}

function options(overrides: Partial<RegistrationOptions> = {}): RegistrationOptions {
  return {
    manifestYaml: `name: task-mgmt\ndescription: ${JSON.stringify(hostile)}\npublic: false\nhook_attributes:\n  url: https://example.invalid/hooks\n  active: true\ndefault_events: [issue_comment, push]\ndefault_permissions: { checks: write }\n`,
    webhookPath: '/api/github/webhooks',
    githubWebUrl: 'https://github.com',
    githubApiUrl: 'https://api.github.com',
    envFile: join(dir, '.env'),
    log: pino({ level: 'silent' }),
    ...overrides,
  };
}

async function page(base: string): Promise<{ action: string; manifest: Record<string, unknown> }> {
  const response = await fetch(`${base}/probot`);
  expect(response.status).toBe(200);
  return registrationForm(await response.text());
}

describe('the App registration page', () => {
  it('carries app.yml to GitHub intact, whatever its text, as parsed HTML gives it back', async () => {
    const base = await listen(registrationHandler(options({ publicUrl: 'https://tasks.example.org' })));
    const { manifest } = await page(base);
    expect(manifest.description).toBe(hostile);
    expect(manifest).toMatchObject({ name: 'task-mgmt', public: false, default_events: ['issue_comment', 'push'], default_permissions: { checks: 'write' } });
    // app.yml's own webhook URL is replaced; its other hook attributes stay.
    expect(manifest.hook_attributes).toEqual({ url: 'https://tasks.example.org/api/github/webhooks', active: true });
    expect(manifest.redirect_url).toBe(`${base}/probot/setup`);
    // The dashboard's sign-in returns to the app's public address.
    expect(manifest.callback_urls).toStrictEqual(['https://tasks.example.org/login/callback']);
  });

  it.each([
    ['WEBHOOK_PROXY_URL when set', { webhookProxyUrl: 'https://smee.io/abc', publicUrl: 'https://tasks.example.org' }, () => 'https://smee.io/abc'],
    ['else PUBLIC_URL + WEBHOOK_PATH', { publicUrl: 'https://tasks.example.org/', webhookPath: '/hooks' }, () => 'https://tasks.example.org/hooks'],
    ['else the address the page was opened at + WEBHOOK_PATH', {}, (base: string) => `${base}/api/github/webhooks`],
  ])('registers as webhook URL %s', async (_name, overrides, expected) => {
    const base = await listen(registrationHandler(options(overrides)));
    const { manifest } = await page(base);
    expect((manifest.hook_attributes as { url: string }).url).toBe(expected(base));
  });

  it('posts to GitHub (or an organization, or GitHub Enterprise) with a state it checks on the way back', async () => {
    const base = await listen(registrationHandler(options({ githubWebUrl: 'https://ghe.example', org: 'octo-org' })));
    const { action } = await page(base);
    expect(action).toMatch(/^https:\/\/ghe\.example\/organizations\/octo-org\/settings\/apps\/new\?state=[0-9a-f]{32}$/);
    const forged = await fetch(`${base}/probot/setup?code=abc&state=${'0'.repeat(32)}`, { redirect: 'manual' });
    expect(forged.status).toBe(400);
    expect(await fetch(`${base}/probot/setup?code=abc`, { redirect: 'manual' }).then((r) => r.status)).toBe(400);
  });

  it('turns the code GitHub returns into the App credentials in .env, which the app then starts with', async () => {
    const pem = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
    const asked: string[] = [];
    const github = await listen((req, res) => {
      asked.push(`${req.method} ${req.url}`);
      if (req.method === 'POST' && req.url === '/api/v3/app-manifests/code-123/conversions') {
        res.writeHead(201, { 'content-type': 'application/json' }).end(
          JSON.stringify({ id: 4242, slug: 'task-mgmt-acme', html_url: 'https://github.com/apps/task-mgmt-acme', pem, webhook_secret: 'hook-secret', client_id: 'Iv1.abc', client_secret: 'client-secret' }),
        );
        return true;
      }
      return false;
    });
    await writeFile(join(dir, '.env'), 'PORT=4000\nAPP_ID=1\n');
    const base = await listen(registrationHandler(options({ githubApiUrl: `${github}/api/v3` })));
    const state = new URL((await page(base)).action).searchParams.get('state');

    const back = await fetch(`${base}/probot/setup?code=code-123&state=${state}`, { redirect: 'manual' });
    expect(back.status).toBe(302);
    expect(back.headers.get('location')).toBe('https://github.com/apps/task-mgmt-acme/installations/new');
    expect(asked).toEqual(['POST /api/v3/app-manifests/code-123/conversions']);

    const env = parseEnv(await readFile(join(dir, '.env'), 'utf8'));
    expect(env).toMatchObject({ PORT: '4000', APP_ID: '4242', WEBHOOK_SECRET: 'hook-secret', GITHUB_CLIENT_ID: 'Iv1.abc', GITHUB_CLIENT_SECRET: 'client-secret' });
    expect(((await stat(join(dir, '.env'))).mode & 0o777).toString(8)).toBe('600');
    expect(loadConfig(env).privateKey?.trim()).toBe(pem.trim());
  });

  it('finds the project\'s own app.yml from where the code runs', () => {
    expect(readAppManifest()).toMatch(/^name: task-mgmt$/m);
  });
});
