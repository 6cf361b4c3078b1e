import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './config.js';

/** A real key, as GitHub gives it (PKCS#1 PEM), with its newlines escaped the way `.env` holds them. */
const pem = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
const app = { APP_ID: '42', PRIVATE_KEY: pem.replace(/\n/g, '\\n'), WEBHOOK_SECRET: 's3cret' };

describe('loadConfig', () => {
  it('starts with no configuration at all (the setup flow and embedded defaults)', () => {
    const config = loadConfig({});
    expect(config.APP_ID).toBeUndefined();
    expect(config.QUEUE_URL).toBeUndefined();
    expect(config).toMatchObject({
      PORT: 3000,
      WORKERS: 1,
      QUEUE_PREFIX: 'task-mgmt',
      WEBHOOK_PATH: '/api/github/webhooks',
      IPFS_GATEWAY_URL: 'http://localhost:3000',
      TASK_TIMEOUT: 3_600_000,
      TASK_MEMORY: 1024 ** 3,
      TASK_CPUS: 1,
      OUTPUT_MAX_BYTES: 20 * 1024 ** 3,
      OUTPUT_MAX_FILES: 1_000_000,
      LOG_MAX_BYTES: 64 * 1024 ** 2,
      githubApiUrl: 'https://api.github.com',
    });
  });

  it.each([
    ['the address the app listens on', {}, 'http://localhost:3000'],
    ['a wildcard address, as localhost', { HOST: '0.0.0.0', PORT: '8080' }, 'http://localhost:8080'],
    ['an IPv6 address, bracketed', { HOST: '::1' }, 'http://[::1]:3000'],
    ['PUBLIC_URL', { PUBLIC_URL: 'https://tasks.example/' }, 'https://tasks.example'],
    ['a gateway given, without its /ipfs/', { PUBLIC_URL: 'https://tasks.example', IPFS_GATEWAY_URL: 'https://gw.example/ipfs/' }, 'https://gw.example'],
  ])("links outputs to the app's own gateway unless told otherwise: %s", (_label, env, expected) => {
    expect(loadConfig(env).IPFS_GATEWAY_URL).toBe(expected);
  });

  it('reads the App credentials, turning escaped newlines of the key into real ones', () => {
    const config = loadConfig({ ...app, GHE_HOST: 'ghe.example:8443', GHE_PROTOCOL: 'http' });
    expect(config.privateKey).toBe(pem);
    expect(config.githubApiUrl).toBe('http://ghe.example:8443/api/v3');
  });

  it.each([
    [{ APP_ID: '42', PRIVATE_KEY: 'k' }, /WEBHOOK_SECRET is required when APP_ID is set/],
    [{ APP_ID: '42', WEBHOOK_SECRET: 's' }, /PRIVATE_KEY or PRIVATE_KEY_PATH is required/],
    [{ APP_ID: 'forty-two' }, /APP_ID must be the numeric App ID/],
    [{ PORT: 'eighty' }, /PORT must be a whole number/],
    [{ WORKERS: '-1' }, /WORKERS must be a whole number from 0 to 64/],
    [{ QUEUE_URL: 'mysql://db' }, /QUEUE_URL must start with redis:\/\//],
    [{ QUEUE_URL: 'not a url' }, /QUEUE_URL is not a URL/],
    [{ DATABASE_URL: 'mysql://db' }, /DATABASE_URL must start with postgres:\/\//],
    [{ IPFS_CID_PROFILE: 'v2' }, /IPFS_CID_PROFILE/],
    [{ TASK_TIMEOUT: 'forever' }, /TASK_TIMEOUT.*not a duration/],
    [{ TASK_MEMORY: 'lots' }, /TASK_MEMORY.*not a size/],
    [{ OUTPUT_MAX_BYTES: 'lots' }, /OUTPUT_MAX_BYTES.*not a size/],
    [{ OUTPUT_MAX_FILES: '0' }, /OUTPUT_MAX_FILES must be a whole number from 1/],
    [{ LOG_MAX_BYTES: '64k' }, /LOG_MAX_BYTES must be at least 1m/],
    [{ WEBHOOK_BODY_BUDGET: '10m' }, /WEBHOOK_BODY_BUDGET must be at least 25m/],
    [{ TASK_CPUS: '0' }, /TASK_CPUS must be a number of CPUs above 0/],
    [{ GHE_PROTOCOL: 'ftp' }, /GHE_PROTOCOL/],
    [{ WORKER_LEASE: '1s' }, /WORKER_LEASE must be at least 3s/],
    [{ PRIVATE_KEY_PATH: '/nonexistent/key.pem' }, /PRIVATE_KEY_PATH cannot be read/],
  ])('%j stops start-up naming the variable', (env, message) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(message);
  });

  it('reads output caps with units, as TASK_MEMORY', () => {
    expect(loadConfig({ OUTPUT_MAX_BYTES: '1t', OUTPUT_MAX_FILES: '5000' })).toMatchObject({ OUTPUT_MAX_BYTES: 1024 ** 4, OUTPUT_MAX_FILES: 5000 });
    expect(loadConfig({ LOG_MAX_BYTES: '1g' }).LOG_MAX_BYTES).toBe(1024 ** 3);
  });
  it('lets a process that takes no webhooks (a worker, a local command) start without WEBHOOK_SECRET', () => {
    const { WEBHOOK_SECRET: _secret, ...worker } = app;
    expect(() => loadConfig(worker)).toThrow(/WEBHOOK_SECRET is required when APP_ID is set/);
    expect(loadConfig(worker, { takesWebhooks: false }).privateKey).toBe(pem);
  });

  it('refuses a key that is not an RSA private key, in one line naming the variable', () => {
    const dir = mkdtempSync(join(tmpdir(), 'config-key-'));
    try {
      const ecKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
      writeFileSync(join(dir, 'app.pem'), 'not a key\n');
      const cases: Array<[Record<string, string>, RegExp]> = [
        [{ ...app, PRIVATE_KEY: '-----BEGIN RSA PRIVATE KEY-----\\nabc\\n-----END RSA PRIVATE KEY-----' }, /^invalid configuration: PRIVATE_KEY is not an RSA private key in PEM format/],
        [{ ...app, PRIVATE_KEY: ecKey }, /^invalid configuration: PRIVATE_KEY is not an RSA private key/],
        [{ APP_ID: '42', WEBHOOK_SECRET: 's', PRIVATE_KEY_PATH: join(dir, 'app.pem') }, /^invalid configuration: PRIVATE_KEY_PATH \(.*app\.pem\) is not an RSA private key/],
      ];
      for (const [env, message] of cases) {
        const error = (() => {
          try {
            loadConfig(env);
          } catch (caught) {
            return caught as Error;
          }
          throw new Error(`accepted ${JSON.stringify(env)}`);
        })();
        expect(error).toBeInstanceOf(ConfigError);
        expect(error.message).toMatch(message);
        expect(error.message).not.toContain('\n');
        expect(error.message).not.toContain('abc');
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reads SHUTDOWN_GRACE as a duration, 30 s unless set', () => {
    expect(loadConfig({}).SHUTDOWN_GRACE).toBe(30_000);
    expect(loadConfig({ SHUTDOWN_GRACE: '2m' }).SHUTDOWN_GRACE).toBe(120_000);
    expect(() => loadConfig({ SHUTDOWN_GRACE: 'soon' })).toThrow(/SHUTDOWN_GRACE "soon" is not a duration/);
  });


  it('reads EXTERNAL_TASK_TYPES as a list of task types, which needs a queue server', () => {
    expect(loadConfig({}).EXTERNAL_TASK_TYPES).toEqual([]);
    expect(loadConfig({ QUEUE_URL: 'amqp://mq', EXTERNAL_TASK_TYPES: 'demo/sha256, acme/ocr,demo/sha256' }).EXTERNAL_TASK_TYPES).toEqual(['demo/sha256', 'acme/ocr']);
    expect(() => loadConfig({ QUEUE_URL: 'amqp://mq', EXTERNAL_TASK_TYPES: 'sha256' })).toThrow(/EXTERNAL_TASK_TYPES.*must be task types like demo\/sha256.*"sha256"/);
    expect(() => loadConfig({ EXTERNAL_TASK_TYPES: 'demo/sha256' })).toThrow(/EXTERNAL_TASK_TYPES needs QUEUE_URL/);
  });
  it('reads RETENTION as a duration, 90 d unless set and at least 1 h', () => {
    expect(loadConfig({}).RETENTION).toBe(90 * 86_400_000);
    expect(loadConfig({ RETENTION: '30d' }).RETENTION).toBe(30 * 86_400_000);
    expect(() => loadConfig({ RETENTION: '10m' })).toThrow(/RETENTION.*at least 1h/);
    expect(() => loadConfig({ RETENTION: 'forever' })).toThrow(/RETENTION "forever" is not a duration/);
  });

  it('serves a worker\'s metrics on METRICS_PORT, 9464 unless set, 0 for none', () => {
    expect(loadConfig({}).METRICS_PORT).toBe(9464);
    expect(loadConfig({ METRICS_PORT: '0' }).METRICS_PORT).toBe(0);
    expect(() => loadConfig({ METRICS_PORT: '70000' })).toThrow(/METRICS_PORT/);
  });

  it('shares 100 MiB among the webhook bodies being read unless WEBHOOK_BODY_BUDGET says otherwise', () => {
    expect(loadConfig({}).WEBHOOK_BODY_BUDGET).toBe(100 * 1024 ** 2);
    expect(loadConfig({ WEBHOOK_BODY_BUDGET: '1g' }).WEBHOOK_BODY_BUDGET).toBe(1024 ** 3);
  });


  it('reads the pin TTLs and the collection interval as durations, 30 d, 365 d and 1 h unless set', () => {
    expect(loadConfig({})).toMatchObject({ PIN_TTL_DEFAULT: 30 * 86_400_000, PIN_TTL_MAX: 365 * 86_400_000, GC_INTERVAL: 3_600_000 });
    expect(loadConfig({ PIN_TTL_DEFAULT: '7d', PIN_TTL_MAX: '90d', GC_INTERVAL: '10m' })).toMatchObject({ PIN_TTL_DEFAULT: 7 * 86_400_000, PIN_TTL_MAX: 90 * 86_400_000, GC_INTERVAL: 600_000 });
    expect(() => loadConfig({ PIN_TTL_MAX: '1y' })).toThrow(/PIN_TTL_MAX "1y" is not a duration/);
    expect(() => loadConfig({ PIN_TTL_DEFAULT: '400d' })).toThrow(/PIN_TTL_DEFAULT must not be longer than PIN_TTL_MAX/);
  });

  it('never echoes a password from a URL', () => {
    expect(() => loadConfig({ QUEUE_URL: 'ftp://user:hunter2@host' })).toThrow(/^(?!.*hunter2)/s);
  });

  it('takes IPFS_API_URL as the Kubo to publish to, and refuses what is not its address in a line naming the variable', () => {
    expect(loadConfig({ IPFS_API_URL: 'http://127.0.0.1:5001' }).IPFS_API_URL).toBe('http://127.0.0.1:5001');
    expect(loadConfig({}).IPFS_API_URL).toBeUndefined();
    for (const [value, reason] of [
      ['ftp://127.0.0.1:5001', 'must start with http:// or https://'],
      ['not a url', 'is not a URL'],
      ['http://127.0.0.1:5001/?arg=x', "must be Kubo's RPC address alone"],
    ]) {
      expect(() => loadConfig({ IPFS_API_URL: value }), value).toThrow(ConfigError);
      expect(() => loadConfig({ IPFS_API_URL: value }), value).toThrow(`IPFS_API_URL ${reason}`);
    }
  });

  it('keeps private outputs off Kubo unless IPFS_PUBLISH_PRIVATE=true, and takes a WORKER_TOKEN of 16 characters or more', () => {
    expect(loadConfig({}).IPFS_PUBLISH_PRIVATE).toBe(false);
    expect(loadConfig({ IPFS_PUBLISH_PRIVATE: 'true' }).IPFS_PUBLISH_PRIVATE).toBe(true);
    expect(() => loadConfig({ IPFS_PUBLISH_PRIVATE: 'yes' })).toThrow(/IPFS_PUBLISH_PRIVATE/);
    expect(loadConfig({ WORKER_TOKEN: 'worker-token-0123456789' }).WORKER_TOKEN).toBe('worker-token-0123456789');
    expect(() => loadConfig({ WORKER_TOKEN: 'short' })).toThrow('WORKER_TOKEN must be one of the API_TOKENS, at least 16 characters');
  });
});
