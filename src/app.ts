/**
 * Composition root: reads the configuration, builds the adapters each URL selects, and hands
 * them to the core. No logic beyond choosing and wiring.
 */
import { hostname } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { pino, type Logger } from 'pino';
import { Probot } from 'probot';
import type { Config } from './config.js';
import { BullmqRunQueue } from './adapters/queue/bullmq-run-queue.js';
import { RabbitmqRunQueue } from './adapters/queue/rabbitmq-run-queue.js';
import { AmqpEventPublisher } from './adapters/events/amqp-event-publisher.js';
import { withEvents } from './adapters/events/eventing-run-store.js';
import { EmbeddedRunQueue } from './adapters/queue/embedded-run-queue.js';
import { TaskTypeRoutedRunQueue } from './adapters/queue/task-type-routed-run-queue.js';
import { SqliteRunStore } from './adapters/store/sqlite-run-store.js';
import { PostgresRunStore } from './adapters/store/postgres-run-store.js';
import { createIpfsStore } from './adapters/ipfs/create-ipfs-store.js';
import { EmbeddedIpfsStore } from './adapters/ipfs/embedded-ipfs-store.js';
import { KuboIpfsStore } from './adapters/ipfs/kubo-ipfs-store.js';
import { everyBackend, firstHolding } from './adapters/ipfs/layered-ipfs.js';
import { VerifiedOutputFetcher } from './adapters/ipfs/verified-output-fetcher.js';
import { DockerExecutor } from './adapters/executor/docker-executor.js';
import { GithubCheckReporter } from './adapters/github/github-check-reporter.js';
import { secretRedactor, type Redact } from './adapters/github/redact-secrets.js';
import { GithubSourceFetcher } from './adapters/source/github-source-fetcher.js';
import type { OctokitForInstallation } from './adapters/github/octokit.js';
import { OctokitRepoHost } from './adapters/github/octokit-repo-host.js';
import { githubOctokit } from './adapters/github/github-octokit.js';
import { KeptCheckReporter } from './core/runs/kept-check-reporter.js';
import { PrometheusMetrics } from './adapters/metrics/prometheus-metrics.js';
import { serializeErrorWithoutPayload } from './adapters/github/error-without-payload.js';
import type { RunHandler, RunQueue } from './ports/run-queue.js';
import type { RunStore } from './ports/run-store.js';
import type { IpfsBlockReader, IpfsBlockWriter, IpfsGarbage, IpfsStore } from './ports/ipfs-store.js';
import type { TaskSettings, TaskType } from './ports/task-type.js';
import type { TaskTypeCatalog } from './core/manifest/load-manifest.js';
import { z } from 'zod';
import type { EventBus } from './ports/event-bus.js';
import type { SandboxLimits } from './ports/executor.js';
import { Collector } from './worker/collector.js';
import { Pruner } from './worker/retention.js';
import { createRunHandler } from './worker/run-worker.js';
import { OrgPolicies } from './core/run-service/run-service.js';
import type { RepoRef } from './core/runs/run.js';
import type { PinTtlLimits } from './core/pins/pin-ttl.js';
import type { OutputLimits } from './worker/output-limits.js';
import { builtInTaskTypes } from '../tasks/index.js';
import { reachWithin, type Backend } from './adapters/net/reach-backend.js';
import { probeAmqp, probeKubo, probePostgres, probeRedis } from './adapters/net/backend-probes.js';

export function createLogger(config: Pick<Config, 'LOG_LEVEL'>): Logger {
  return pino({
    level: config.LOG_LEVEL ?? 'info',
    // Belt and braces: tokens and keys must never reach a log line, whatever gets logged.
    redact: {
      paths: ['token', '*.token', 'privateKey', '*.privateKey', 'headers.authorization', '*.headers.authorization', 'req.headers.authorization'],
      censor: '[redacted]',
    },
    // Errors about webhook deliveries carry the payload; it is never logged, only its size.
    serializers: { err: serializeErrorWithoutPayload },
  });
}

export interface Services {
  store: RunStore;
  /** Where run events go besides the store (EVENTS_URL), for progress. */
  events?: EventBus;
  queue: RunQueue;
  /** Where outputs and provenance records go. */
  ipfs: IpfsStore & IpfsBlockWriter;
  /** With Kubo and IPFS_PUBLISH_PRIVATE off: the store in DATA_DIR that private repositories' outputs go to instead. */
  privateIpfs?: IpfsStore & IpfsBlockWriter;
  /** Reads stored blocks back for the app's gateway (`/ipfs/…`); null when the backend cannot. */
  blocks: IpfsBlockReader | null;
  /** What the pin collector releases on the backend: Kubo's pins, the embedded store's blocks. */
  garbage: IpfsGarbage;
  /** The process's Prometheus metrics: run moves counted from the store's events, the queue's depth. */
  metrics: PrometheusMetrics;
  close(): Promise<void>;
}

/**
 * Every server the configuration names must answer within CONNECT_TIMEOUT, or start-up stops with
 * one line naming it (README "Settings"): clients that retry for ever would otherwise hang.
 */
export async function reachBackends(config: Config): Promise<void> {
  const checks: [Backend, (url: string, signal: AbortSignal) => Promise<void>][] = [];
  if (config.DATABASE_URL) checks.push([{ name: 'PostgreSQL', variable: 'DATABASE_URL', url: config.DATABASE_URL }, probePostgres]);
  if (config.QUEUE_URL) {
    const amqp = config.QUEUE_URL.startsWith('amqp');
    checks.push([{ name: amqp ? 'RabbitMQ' : 'Redis', variable: 'QUEUE_URL', url: config.QUEUE_URL }, amqp ? probeAmqp : probeRedis]);
  }
  if (config.EVENTS_URL) checks.push([{ name: 'RabbitMQ', variable: 'EVENTS_URL', url: config.EVENTS_URL }, probeAmqp]);
  if (config.IPFS_API_URL) checks.push([{ name: 'Kubo', variable: 'IPFS_API_URL', url: config.IPFS_API_URL }, probeKubo]);
  await Promise.all(checks.map(([backend, probe]) => reachWithin(backend, config.CONNECT_TIMEOUT, (signal) => probe(backend.url, signal))));
}

/** `role` labels the process's metrics: the app (`serve`, `run`) or a `task-mgmt worker`. */
export async function openServices(config: Config, log: Logger, { role = 'app' }: { role?: 'app' | 'worker' } = {}): Promise<Services> {
  await reachBackends(config);
  const sqlStore = config.DATABASE_URL
    ? await PostgresRunStore.open(config.DATABASE_URL)
    : await SqliteRunStore.open(join(config.DATA_DIR, 'task-mgmt.sqlite'));
  // With EVENTS_URL, every state change the store records is also published on AMQP.
  const events = config.EVENTS_URL ? new AmqpEventPublisher({ url: config.EVENTS_URL, log: log.child({ name: 'events' }) }) : undefined;
  const published: RunStore = events ? withEvents(sqlStore, events, log.child({ name: 'events' })) : sqlStore;
  // Runs by state are counted as this process records each move, never by querying the store.
  let depthOf: (() => Promise<number>) | undefined;
  const metrics = new PrometheusMetrics({ role, queueDepth: () => (depthOf ? depthOf() : Promise.reject(new Error('no queue yet'))) });
  const store = withEvents(published, metrics.runEvents(), log.child({ name: 'metrics' }));
  const queueLog = log.child({ name: 'queue' });
  const queueOn = (url: string, name: string): RunQueue =>
    url.startsWith('amqp')
      ? new RabbitmqRunQueue({ url, queueName: `${config.QUEUE_PREFIX}.${name}`, log: queueLog, producerTimeoutMs: config.CONNECT_TIMEOUT })
      : new BullmqRunQueue({ url, prefix: config.QUEUE_PREFIX, queueName: name, log: queueLog, producerTimeoutMs: config.CONNECT_TIMEOUT });
  const mainQueue: RunQueue = !config.QUEUE_URL ? new EmbeddedRunQueue({ store, log: queueLog }) : queueOn(config.QUEUE_URL, 'runs');
  // Runs of the types external workers serve go on a queue per type, which this process never consumes.
  const externalTypes = config.EXTERNAL_TASK_TYPES ?? [];
  const queue: RunQueue =
    config.QUEUE_URL && externalTypes.length > 0
      ? new TaskTypeRoutedRunQueue({
          main: mainQueue,
          external: new Map(externalTypes.map((type) => [type, queueOn(config.QUEUE_URL!, `runs.${type}`)])),
          taskTypeOf: async (runId) => (await store.getRun(runId))?.taskType,
        })
      : mainQueue;
  if (queue.depth) depthOf = () => queue.depth!();
  // IPFS_API_URL publishes to Kubo; unset keeps blocks in DATA_DIR. Same importer, same CIDs.
  const ipfs = createIpfsStore({
    dataDir: config.DATA_DIR,
    apiUrl: config.IPFS_API_URL,
    ...(config.IPFS_CID_PROFILE ? { profile: { profile: config.IPFS_CID_PROFILE } } : {}),
  });
  // Private repositories' outputs are never sent to Kubo unless IPFS_PUBLISH_PRIVATE says so: they
  // stay in DATA_DIR, and the app's gateway reads both stores.
  const privateIpfs =
    ipfs instanceof KuboIpfsStore && !config.IPFS_PUBLISH_PRIVATE
      ? new EmbeddedIpfsStore({ dataDir: config.DATA_DIR, ...(config.IPFS_CID_PROFILE ? { profile: { profile: config.IPFS_CID_PROFILE } } : {}) })
      : undefined;
  return {
    store,
    ...(events ? { events } : {}),
    queue,
    ipfs,
    ...(privateIpfs ? { privateIpfs } : {}),
    blocks: privateIpfs ? firstHolding([privateIpfs, ipfs]) : ipfs,
    garbage: privateIpfs ? everyBackend([ipfs, privateIpfs]) : ipfs,
    metrics,
    async close() {
      await queue.close();
      await ipfs.close();
      await privateIpfs?.close();
      await store.close();
    },
  };
}

/** A Probot instance that only talks to GitHub (no server): for workers and background work. */
export function createGithubClient(config: Config, log: Logger): { probot: Probot; octokitFor: OctokitForInstallation } {
  if (!config.APP_ID || !config.privateKey) throw new Error('APP_ID and PRIVATE_KEY (or PRIVATE_KEY_PATH) are needed to talk to GitHub');
  const probot = new Probot({
    appId: config.APP_ID,
    privateKey: config.privateKey,
    ...(config.WEBHOOK_SECRET ? { secret: config.WEBHOOK_SECRET } : {}),
    baseUrl: config.githubApiUrl,
    log: log.child({ name: 'github' }),
    Octokit: githubOctokit(log.child({ name: 'github' })),
  });
  return { probot, octokitFor: (installationId) => probot.auth(installationId) };
}

export function workerId(): string {
  return `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
}

/**
 * Starts taking runs from the queue with `concurrency` at once. Aborting `stopping` (with a
 * WorkerStoppingError, at the end of SHUTDOWN_GRACE) stops the runs still going and hands them
 * back to the queue.
 */
export async function startWorker(
  config: Config,
  services: Services,
  octokitFor: OctokitForInstallation,
  log: Logger,
  concurrency: number,
  stopping?: AbortSignal,
): Promise<void> {
  const hostFor = async (repo: RepoRef) => new OctokitRepoHost(await octokitFor(repo.installationId), repo);
  const handler = createRunHandler({
    store: services.store,
    hostFor,
    // The org policy, asked again just before each task starts (the app records what it sees).
    orgPolicies: new OrgPolicies({ hostFor, now: () => new Date() }),
    maxRunningPerRepo: config.REPO_CONCURRENCY,
    // An update GitHub does not take is kept in the store; the app sends it once GitHub answers.
    checks: new KeptCheckReporter({
      checks: new GithubCheckReporter({ octokitFor, publicUrl: config.PUBLIC_URL, redact: githubRedactor(config) }),
      store: services.store,
      log: log.child({ name: 'checks' }),
      now: () => new Date(),
    }),
    source: new GithubSourceFetcher({
      octokitFor,
      onSkipped: (report) => log.info({ skipped: report.skipped.slice(0, 20) }, 'source entries left out (links and special files)'),
    }),
    executor: new DockerExecutor({
      logger: log.child({ name: 'executor' }),
      buildTimeoutMs: config.BUILD_TIMEOUT,
      allowedRegistries: config.ALLOWED_REGISTRIES,
    }),
    ipfs: services.ipfs,
    ...(services.privateIpfs ? { privateIpfs: services.privateIpfs } : {}),
    // Needed outputs another machine made: from Kubo when published there, else from the app's gateway.
    outputs: new VerifiedOutputFetcher({
      node: services.ipfs instanceof KuboIpfsStore ? { blocks: services.ipfs, name: `Kubo at ${services.ipfs.apiUrl}` } : undefined,
      appUrl: config.PUBLIC_URL,
      token: config.WORKER_TOKEN,
    }),
    taskTypes: builtInTaskTypes,
    settings: taskSettings(config),
    ...(services.events ? { events: services.events } : {}),
    log: log.child({ name: 'worker' }),
    dataDir: config.DATA_DIR,
    gatewayUrl: config.IPFS_GATEWAY_URL,
    limits: defaultLimits(config),
    outputLimits: outputLimits(config),
    logMaxBytes: config.LOG_MAX_BYTES,
    workerId: workerId(),
    leaseMs: config.WORKER_LEASE,
    progressIntervalMs: config.PROGRESS_INTERVAL,
    pinTtl: pinTtl(config),
    metrics: services.metrics,
  });
  const run: RunHandler = async (message, context) => {
    services.metrics.activeRuns(1);
    try {
      await handler(message, stopping ? { signal: AbortSignal.any([context.signal, stopping]) } : context);
    } finally {
      services.metrics.activeRuns(-1);
    }
  };
  await services.queue.consume(run, { concurrency });
}

/**
 * The task types a manifest may name: the built-in ones, and those EXTERNAL_TASK_TYPES says
 * workers outside this app serve, whose `with:` is theirs to check (any mapping is accepted here).
 */
export function taskCatalog(config: Pick<Config, 'EXTERNAL_TASK_TYPES'>): TaskTypeCatalog {
  const external = config.EXTERNAL_TASK_TYPES ?? [];
  if (external.length === 0) return builtInTaskTypes;
  const catalog = new Map<string, Pick<TaskType, 'name' | 'params'>>(builtInTaskTypes);
  for (const name of external) {
    if (builtInTaskTypes.has(name)) throw new Error(`EXTERNAL_TASK_TYPES names \`${name}\`, a task type this app runs itself`);
    catalog.set(name, { name, params: z.record(z.string(), z.unknown()) });
  }
  return catalog;
}

/** PIN_TTL_DEFAULT and PIN_TTL_MAX: how long outputs stay pinned unless a manifest says, and at most. */
export function pinTtl(config: Config): PinTtlLimits {
  return { defaultMs: config.PIN_TTL_DEFAULT, maxMs: config.PIN_TTL_MAX };
}

/**
 * Starts pruning what RETENTION no longer keeps (handled webhook deliveries, audit entries, logs
 * of runs that ended), every GC_INTERVAL; one replica at a time prunes.
 */
export function startPruner(config: Config, services: Services, log: Logger): { stop(): Promise<void> } {
  return new Pruner({
    store: services.store,
    retentionMs: config.RETENTION,
    intervalMs: config.GC_INTERVAL,
    holder: workerId(),
    log: log.child({ name: 'retention' }),
    // Logs kept as files before they moved to the run store.
    logDirs: [join(config.DATA_DIR, 'logs')],
  }).start();
}

/**
 * Starts this process's pin collector (README "Pins"), every GC_INTERVAL. `collectPins: false`
 * leaves the pins to the app and only cleans the output folders of this DATA_DIR.
 */
export function startCollector(config: Config, services: Services, log: Logger, options: { collectPins?: boolean } = {}): { stop(): Promise<void> } {
  return new Collector({
    store: services.store,
    ipfs: services.garbage,
    dataDir: config.DATA_DIR,
    holder: workerId(),
    intervalMs: config.GC_INTERVAL,
    log: log.child({ name: 'collector' }),
    ...options,
  }).start();
}

/** What every text bound for GitHub passes through: the deployment's secrets never show there. */
export function githubRedactor(config: Config): Redact {
  return secretRedactor({
    // A worker's WORKER_TOKEN is one of the app's API_TOKENS, which a worker process may not be given.
    apiTokens: config.WORKER_TOKEN ? [...config.API_TOKENS, config.WORKER_TOKEN] : config.API_TOKENS,
    webhookSecret: config.WEBHOOK_SECRET,
    clientSecret: config.GITHUB_CLIENT_SECRET,
    sessionSecret: config.SESSION_SECRET,
    privateKey: config.privateKey,
  });
}

/** Which queue adapter the configuration selects, for log lines. */
export function queueKind(config: Pick<Config, 'QUEUE_URL'>): 'embedded' | 'bullmq' | 'rabbitmq' {
  if (!config.QUEUE_URL) return 'embedded';
  return config.QUEUE_URL.startsWith('amqp') ? 'rabbitmq' : 'bullmq';
}

/** What task types may know of the deployment (never GitHub's credentials). */
export function taskSettings(config: Config): TaskSettings {
  return {
    allowPrivateAddresses: config.ALLOW_PRIVATE_ADDRESSES,
    gatewayUrl: config.IPFS_GATEWAY_URL,
    ...(config.SMTP_URL ? { smtpUrl: config.SMTP_URL } : {}),
    ...(config.MAIL_FROM ? { mailFrom: config.MAIL_FROM } : {}),
  };
}

/** Caps on what one run may leave in its output folder. */
export function outputLimits(config: Config): OutputLimits {
  return { maxBytes: config.OUTPUT_MAX_BYTES, maxFiles: config.OUTPUT_MAX_FILES };
}

/** The deployment's default sandbox limits, for tasks whose manifest sets none. */
export function defaultLimits(config: Config): SandboxLimits {
  return { memoryBytes: config.TASK_MEMORY, nanoCpus: Math.round(config.TASK_CPUS * 1e9), pidsLimit: config.TASK_PIDS, timeoutMs: config.TASK_TIMEOUT };
}
