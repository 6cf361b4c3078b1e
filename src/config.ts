/**
 * The one place that reads process.env. Parsed once at start-up; an invalid value stops the
 * process with a message that names the variable (README "Configuration").
 */
import { createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { z } from 'zod';
import { durationSchema, sizeSchema } from './core/runs/units.js';

const optionalString = z
  .string()
  .optional()
  .transform((value) => (value === undefined || value.trim() === '' ? undefined : value.trim()));

const integer = (fallback: number, min: number, max = Number.MAX_SAFE_INTEGER) =>
  z
    .string()
    .optional()
    .transform((value, ctx) => {
      if (value === undefined || value.trim() === '') return fallback;
      const parsed = Number(value);
      if (!Number.isInteger(parsed) || parsed < min || parsed > max) {
        ctx.addIssue({ code: 'custom', message: `must be a whole number from ${min} to ${max}, got "${value}"` });
        return z.NEVER;
      }
      return parsed;
    });

const url = (protocols: string[]) =>
  optionalString.superRefine((value, ctx) => {
    if (value === undefined) return;
    let parsed: URL;
    try {
      parsed = new URL(value);
    } catch {
      ctx.addIssue({ code: 'custom', message: `is not a URL: "${redact(value)}"` });
      return;
    }
    if (!protocols.includes(parsed.protocol)) {
      ctx.addIssue({
        code: 'custom',
        message: `must start with ${protocols.map((p) => `${p}//`).join(' or ')}, got "${parsed.protocol}//…"`,
      });
    }
  });

const envSchema = z
  .object({
    /** GitHub App id; without it `serve` starts Probot's setup flow that registers the app. */
    APP_ID: optionalString.pipe(z.string().regex(/^\d+$/, 'must be the numeric App ID').optional()),
    /** The App's private key (PEM), or a path to it in PRIVATE_KEY_PATH. */
    PRIVATE_KEY: optionalString,
    PRIVATE_KEY_PATH: optionalString,
    /** Secret GitHub signs webhooks with; required whenever APP_ID is set and the process takes webhooks (`serve`). */
    WEBHOOK_SECRET: optionalString,
    /** OAuth client secret of the App (dashboard sign-in); never shown on GitHub. */
    GITHUB_CLIENT_SECRET: optionalString,
    /** OAuth client id of the App (dashboard sign-in); with GITHUB_CLIENT_SECRET, "Sign in with GitHub" works. */
    GITHUB_CLIENT_ID: optionalString,
    /**
     * Key material for the dashboard's session cookies (at least 32 characters). Unset: derived from
     * the App's private key and GITHUB_CLIENT_SECRET. Changing it signs everyone out.
     */
    SESSION_SECRET: optionalString.pipe(z.string().min(32, 'must be at least 32 characters').optional()),
    WEBHOOK_PATH: optionalString.transform((v) => v ?? '/api/github/webhooks'),
    /** GitHub Enterprise (or any GitHub-compatible API) host; the API is at <protocol>://<host>/api/v3. */
    GHE_HOST: optionalString,
    GHE_PROTOCOL: optionalString.pipe(z.enum(['http', 'https']).optional()).transform((v) => v ?? 'https'),
    PORT: integer(3000, 0, 65535),
    HOST: optionalString,
    /** Where `task-mgmt worker` serves /metrics and /healthz (all interfaces); 0 serves neither. */
    METRICS_PORT: integer(9464, 0, 65535),
    LOG_LEVEL: optionalString.pipe(
      z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).optional(),
    ),
    /**
     * Bytes of webhook bodies the app reads and handles at once, all connections together: a body
     * that would pass it is refused with 503 and Retry-After while it is read. At least 25m, one
     * body of the largest GitHub sends.
     */
    WEBHOOK_BODY_BUDGET: optionalString
      .transform((v): string | number => v ?? '100m')
      .pipe(sizeSchema)
      .refine((bytes) => bytes >= 25 * 1024 * 1024, 'must be at least 25m (25 MiB), the largest body GitHub sends'),
    /** A webhook relay (smee.io) for development; the setup flow registers it as the App's webhook URL. */
    WEBHOOK_PROXY_URL: optionalString,
    /** Register the App under this organization instead of the signed-in user (setup flow). */
    GH_ORG: optionalString,
    /** Unset: the embedded in-process queue. redis://… selects BullMQ; amqp://… RabbitMQ. */
    QUEUE_URL: url(['redis:', 'rediss:', 'amqp:', 'amqps:']),
    /** Prefix of every BullMQ key, and of the RabbitMQ queue (`<prefix>.runs`), so deployments can share a server. */
    QUEUE_PREFIX: optionalString.transform((v) => v ?? 'task-mgmt'),
    /**
     * Task types that workers outside this app serve (examples/python-worker), comma-separated
     * `owner/name` names such as `demo/sha256`: a manifest may name them in `uses:`, and their runs
     * travel on a queue of their own, `<QUEUE_PREFIX>.runs.<type>`, that the app's workers never take.
     */
    EXTERNAL_TASK_TYPES: optionalString.transform((v, ctx) => {
      const types = [...new Set((v ?? '').split(',').map((t) => t.trim()).filter(Boolean))];
      const bad = types.find((t) => !/^[a-z0-9][a-z0-9-]*\/[a-z0-9][a-z0-9.-]*$/.test(t));
      if (bad !== undefined) {
        ctx.addIssue({ code: 'custom', message: `must be task types like demo/sha256 separated by commas, got "${bad}"` });
        return z.NEVER;
      }
      return types;
    }),
    /** Unset: SQLite in DATA_DIR. postgres://… selects PostgreSQL, shared by app and workers. */
    DATABASE_URL: url(['postgres:', 'postgresql:']),
    /**
     * Kubo's RPC API, e.g. http://127.0.0.1:5001: each run's outputs are sent to that Kubo and
     * pinned there (README "Publishing to Kubo"). Unset: the embedded store in DATA_DIR.
     */
    IPFS_API_URL: url(['http:', 'https:']).refine(
      (value) => value === undefined || (!value.includes('?') && !value.includes('#')),
      "must be Kubo's RPC address alone, like http://127.0.0.1:5001, without ?query or #fragment",
    ),
    /**
     * The gateway links in check runs and mails point at, as `<url>/ipfs/<cid>` (a trailing `/ipfs/`
     * is dropped). Unset: the app's own gateway (`PUBLIC_URL`, or the address it listens on) with
     * the embedded store; https://ipfs.io when Kubo (IPFS_API_URL) publishes the outputs.
     */
    IPFS_GATEWAY_URL: url(['http:', 'https:']).transform((v) => v?.replace(/\/+$/, '').replace(/\/ipfs$/, '')),
    IPFS_CID_PROFILE: optionalString.pipe(z.enum(['unixfs-v0-2015', 'unixfs-v1-2025']).optional()),
    /** How long a run's outputs stay pinned when its manifest sets no `pin.ttl` (README "Pins"). */
    PIN_TTL_DEFAULT: optionalString.transform((v) => v ?? '30d').pipe(durationSchema),
    /** The longest pin a manifest's `pin.ttl` or a `/pin` may ask for; more is refused, naming this cap. */
    PIN_TTL_MAX: optionalString.transform((v) => v ?? '365d').pipe(durationSchema),
    /** Time between two collections of expired pins and unpinned blocks (one replica collects at a time). */
    GC_INTERVAL: optionalString.transform((v) => v ?? '1h').pipe(durationSchema),
    /** Handled webhook deliveries, audit entries and the logs of runs that ended longer ago than this are deleted. */
    RETENTION: optionalString
      .transform((v) => v ?? '90d')
      .pipe(durationSchema)
      .refine((ms) => ms >= 60 * 60_000, 'must be at least 1h'),
    /**
     * Send the outputs of private repositories' runs to Kubo too (IPFS_API_URL), where anyone who
     * learns a CID can fetch them. Unset or false: they stay in the embedded store in DATA_DIR,
     * which the app's gateway serves only to those who may read the run.
     */
    IPFS_PUBLISH_PRIVATE: optionalString.pipe(z.enum(['true', 'false']).optional()).transform((v) => v === 'true'),
    EVENTS_URL: url(['amqp:', 'amqps:']),
    DATA_DIR: optionalString.transform((v) => resolve(v ?? './data')),
    /** In-process worker concurrency; 0 runs no worker in the app process. */
    WORKERS: integer(1, 0, 64),
    PUBLIC_URL: url(['http:', 'https:']).transform((v) => v?.replace(/\/+$/, '')),
    /** Default sandbox limits for a task that sets none. */
    TASK_TIMEOUT: optionalString.transform((v) => v ?? '1h').pipe(durationSchema),
    TASK_MEMORY: optionalString.transform((v): string | number => v ?? '1g').pipe(sizeSchema),
    TASK_CPUS: optionalString.transform((v, ctx) => {
      const cpus = Number(v ?? '1');
      if (!(cpus > 0 && cpus <= 64)) {
        ctx.addIssue({ code: 'custom', message: `must be a number of CPUs above 0, got "${v}"` });
        return z.NEVER;
      }
      return cpus;
    }),
    TASK_PIDS: integer(256, 16, 65536),
    /**
     * Most bytes a task may leave in /out, by apparent size (a sparse 1 TiB file counts as 1 TiB):
     * checked every few seconds while it runs and before the add to IPFS; past it the task is stopped.
     */
    OUTPUT_MAX_BYTES: optionalString.transform((v): string | number => v ?? '20g').pipe(sizeSchema),
    /** Most files and folders a task may leave in /out, checked as OUTPUT_MAX_BYTES is. */
    OUTPUT_MAX_FILES: integer(1_000_000, 1),
    /**
     * Most bytes of one run's log the run store keeps: past it the first half and the newest half
     * stay, and readers are told how much was cut between them. At least 1 MiB.
     */
    LOG_MAX_BYTES: optionalString
      .transform((v): string | number => v ?? '64m')
      .pipe(sizeSchema)
      .refine((bytes) => bytes >= 1024 * 1024, 'must be at least 1m (1 MiB)'),
    /** Longest an image build may take; past it the build is stopped and the run fails. */
    BUILD_TIMEOUT: optionalString.transform((v) => v ?? '30m').pipe(durationSchema),
    /**
     * Registries builds may pull base images from, comma-separated host names (`ghcr.io`,
     * `docker.io`, `registry.example:5000`); unset: any public registry. Images already on the
     * Docker host are used without a pull whatever their registry.
     */
    ALLOWED_REGISTRIES: optionalString.transform((v, ctx) => {
      const registries = (v ?? '').split(',').map((r) => r.trim().toLowerCase()).filter(Boolean);
      const bad = registries.find((r) => !/^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:\d{1,5})?$/.test(r));
      if (bad !== undefined) {
        ctx.addIssue({ code: 'custom', message: `must be registry host names separated by commas, got "${bad}"` });
        return z.NEVER;
      }
      return registries;
    }),
    /** Base image for Procfile tasks that name none; it must already be on the Docker host. */
    PROCFILE_IMAGE: optionalString.transform((v) => v ?? 'busybox:latest'),
    /** SMTP server for notify/email, e.g. smtp://user:pass@mail.example:587. */
    SMTP_URL: url(['smtp:', 'smtps:']),
    MAIL_FROM: optionalString,
    /** Let task types fetch from loopback and private addresses (never in production). */
    ALLOW_PRIVATE_ADDRESSES: optionalString.pipe(z.enum(['true', 'false']).optional()).transform((v) => v === 'true'),
    /** Service tokens for the JSON API and JSON-RPC, comma-separated (each at least 16 characters). */
    API_TOKENS: optionalString.transform((v, ctx) => {
      const tokens = (v ?? '').split(',').map((t) => t.trim()).filter(Boolean);
      if (tokens.some((t) => t.length < 16)) {
        ctx.addIssue({ code: 'custom', message: 'must be tokens of at least 16 characters, separated by commas' });
        return z.NEVER;
      }
      return tokens;
    }),
    /**
     * A worker's token for the app's gateway (`PUBLIC_URL/ipfs/`), one of the app's API_TOKENS: a
     * worker lacking a needed task's outputs fetches them there, a private repository's too.
     * Sent to PUBLIC_URL only.
     */
    WORKER_TOKEN: optionalString.refine((v) => v === undefined || v.length >= 16, 'must be one of the API_TOKENS, at least 16 characters'),
    /** Least time between two progress updates of a check run (each is a GitHub write). */
    PROGRESS_INTERVAL: optionalString.transform((v) => v ?? '10s').pipe(durationSchema),
    /**
     * How long a run stays a worker's without a heartbeat; a run whose lease ran out is queued again.
     * Workers renew at most once a second, so a lease under 3 s could run out between renewals.
     */
    WORKER_LEASE: optionalString
      .transform((v) => v ?? '30s')
      .pipe(durationSchema)
      .refine((ms) => ms >= 3000, 'must be at least 3s: workers renew their lease at most once a second, every third of it'),
    /** Runs of one repository that may run at once; more wait queued. */
    REPO_CONCURRENCY: integer(2, 1, 1000),
    /** Commands one person may give per minute (run, retry, re-run, cancel). */
    COMMANDS_PER_MINUTE: integer(10, 1, 10_000),
    /**
     * How long SIGTERM waits for running runs to finish; then they are stopped and handed back to
     * the queue, and the process exits at most 5 s later whatever it is still waiting for.
     */
    SHUTDOWN_GRACE: optionalString.transform((v) => v ?? '30s').pipe(durationSchema),
    /**
     * How long `serve` and `worker` wait at start-up for Redis, RabbitMQ, PostgreSQL and Kubo
     * before they give up with a line naming the backend; also the longest a request waits to put
     * a run on a queue that has gone away.
     */
    CONNECT_TIMEOUT: optionalString
      .transform((v) => v ?? '10s')
      .pipe(durationSchema)
      .refine((ms) => ms >= 100, 'must be at least 100ms'),
  })
  .superRefine((env, ctx) => {
    if (env.PIN_TTL_DEFAULT > env.PIN_TTL_MAX) {
      ctx.addIssue({ code: 'custom', path: ['PIN_TTL_DEFAULT'], message: 'must not be longer than PIN_TTL_MAX' });
    }
    if (env.APP_ID && !env.PRIVATE_KEY && !env.PRIVATE_KEY_PATH) {
      ctx.addIssue({ code: 'custom', path: ['PRIVATE_KEY'], message: 'or PRIVATE_KEY_PATH is required when APP_ID is set' });
    }
    if (env.EXTERNAL_TASK_TYPES.length > 0 && !env.QUEUE_URL) {
      ctx.addIssue({ code: 'custom', path: ['EXTERNAL_TASK_TYPES'], message: 'needs QUEUE_URL: external workers take their runs from a queue server, not from the embedded queue' });
    }
  })
  .transform((env) => ({ ...env, IPFS_GATEWAY_URL: env.IPFS_GATEWAY_URL ?? defaultGatewayUrl(env) }));

/**
 * Where outputs can be fetched when IPFS_GATEWAY_URL is unset: the app's own gateway, so every
 * link in a check run resolves. Without PUBLIC_URL that is the address it listens on (README says
 * to set PUBLIC_URL: a wildcard or loopback address resolves only on the machine itself).
 */
function defaultGatewayUrl(env: { IPFS_API_URL?: string | undefined; PUBLIC_URL?: string | undefined; HOST?: string | undefined; PORT: number }): string {
  if (env.IPFS_API_URL !== undefined) return 'https://ipfs.io';
  if (env.PUBLIC_URL !== undefined) return env.PUBLIC_URL;
  const host = env.HOST === undefined || env.HOST === '0.0.0.0' || env.HOST === '::' ? 'localhost' : env.HOST;
  return `http://${host.includes(':') ? `[${host}]` : host}:${env.PORT}`;
}

function redact(value: string): string {
  return value.replace(/\/\/[^@/]*@/, '//***@');
}

export type Env = z.infer<typeof envSchema>;

export interface Config extends Env {
  /** The PEM key, read from PRIVATE_KEY or PRIVATE_KEY_PATH. */
  privateKey: string | undefined;
  /** GitHub's REST base URL. */
  githubApiUrl: string;
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

export interface LoadConfigOptions {
  /**
   * Whether this process takes webhooks (`serve`): then APP_ID needs WEBHOOK_SECRET, since without
   * it Probot would accept webhooks signed with the public secret "development". A worker, or a
   * local command, takes none and needs no secret. Default true.
   */
  takesWebhooks?: boolean;
}

/** One problem: one line naming the variable; several: one line each under a heading. */
function invalid(lines: string[]): ConfigError {
  return new ConfigError(lines.length === 1 ? `invalid configuration: ${lines[0]}` : `invalid configuration:\n${lines.map((line) => `  ${line}`).join('\n')}`);
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env, options: LoadConfigOptions = {}): Config {
  const parsed = envSchema.safeParse(env);
  const problems = parsed.success ? [] : parsed.error.issues.map((issue) => `${issue.path.join('.') || '(environment)'} ${issue.message}`);
  const secretMissing = (options.takesWebhooks ?? true) && optionalString.parse(env.APP_ID) !== undefined && optionalString.parse(env.WEBHOOK_SECRET) === undefined;
  if (secretMissing) {
    problems.push('WEBHOOK_SECRET is required when APP_ID is set (without it Probot would accept webhooks signed with the public secret "development")');
  }
  if (!parsed.success || problems.length > 0) throw invalid(problems);
  const config = parsed.data;
  let privateKey = config.PRIVATE_KEY?.replace(/\\n/g, '\n');
  let keyVariable = 'PRIVATE_KEY';
  if (!privateKey && config.PRIVATE_KEY_PATH) {
    keyVariable = `PRIVATE_KEY_PATH (${config.PRIVATE_KEY_PATH})`;
    try {
      privateKey = readFileSync(config.PRIVATE_KEY_PATH, 'utf8');
    } catch (error) {
      throw invalid([`PRIVATE_KEY_PATH cannot be read: ${(error as Error).message}`]);
    }
  }
  // A wrong key would otherwise start fine and fail at the first GitHub request, minutes later.
  if (privateKey !== undefined && !isRsaPrivateKey(privateKey)) {
    throw invalid([`${keyVariable} is not an RSA private key in PEM format (the .pem file GitHub gives for the App)`]);
  }
  const githubApiUrl = config.GHE_HOST ? `${config.GHE_PROTOCOL}://${config.GHE_HOST}/api/v3` : 'https://api.github.com';
  return { ...config, privateKey, githubApiUrl };
}

function isRsaPrivateKey(pem: string): boolean {
  try {
    return createPrivateKey({ key: pem, format: 'pem' }).asymmetricKeyType === 'rsa';
  } catch {
    return false;
  }
}
