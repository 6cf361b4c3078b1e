/**
 * `task-mgmt serve` (npm start): the GitHub App. Without APP_ID it serves the page that registers
 * the App from app.yml; with it, webhooks, /healthz and the in-process worker.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { resolve as resolvePath } from 'node:path';
import type { Logger } from 'pino';
import { Probot, Server } from 'probot';
import type { Config } from '../config.js';
import { taskCatalog } from '../app.js';
import { createLogger, githubRedactor, openServices, pinTtl, queueKind, startCollector, startPruner, startWorker } from '../app.js';
import { WebhookIntake } from '../adapters/github/webhook-intake.js';
import { GithubCheckReporter } from '../adapters/github/github-check-reporter.js';
import { createProbotApp } from '../adapters/github/probot-app.js';
import { withWebhookBodyLimit } from '../adapters/github/webhook-body-limit.js';
import type { OctokitForInstallation } from '../adapters/github/octokit.js';
import { newRunId } from '../core/runs/ids.js';
import { createHttpApi } from '../adapters/http/http-api.js';
import { pinnedAccess } from '../adapters/http/ipfs-gateway-access.js';
import { logRequests, withoutProbotRequestLog } from '../adapters/http/request-log.js';
import { instrumentOctokit } from '../adapters/github/octokit.js';
import { githubUserResolver } from '../adapters/github/user-tokens.js';
import { installationResolver } from '../adapters/github/installations.js';
import { RunRequests } from '../adapters/http/run-requests.js';
import { recoverAbandonedRuns } from '../core/runs/recover-runs.js';
import { RunService } from '../core/run-service/run-service.js';
import { OrgPolicies, Scheduler } from '../core/run-service/run-service.js';
import { installedRepositories } from '../adapters/github/installed-repositories.js';
import type { RepoRef } from '../core/runs/run.js';
import { OctokitRepoHost } from '../adapters/github/octokit-repo-host.js';
import type { RunStore } from '../ports/run-store.js';
import { WorkerStoppingError } from '../ports/errors.js';
import { readAppManifest, registrationHandler } from './app-registration.js';
import { githubOctokit } from '../adapters/github/github-octokit.js';
import { KeptCheckReporter } from '../core/runs/kept-check-reporter.js';
import { dashboardFor } from './dashboard.js';
import { onStopSignal, stopWithin } from './shutdown.js';

/** How often due schedules are looked for (a firing is at most this late). */
const SCHEDULE_TICK_MS = 20_000;

export async function serve(config: Config): Promise<number> {
  const log = createLogger(config);
  if (!config.APP_ID || !config.privateKey) return serveRegistration(config, log);

  const services = await openServices(config, log);
  const redact = githubRedactor(config);
  let intake: WebhookIntake | undefined;
  const server = new Server({
    // Bodies over GitHub's 25 MB cap are refused while they are read, before Probot buffers them.
    Probot: withWebhookBodyLimit(
      Probot.defaults({
        appId: config.APP_ID,
        privateKey: config.privateKey,
        secret: config.WEBHOOK_SECRET!,
        baseUrl: config.githubApiUrl,
        log,
        Octokit: githubOctokit(log.child({ name: 'github' })),
      }),
      { path: config.WEBHOOK_PATH, log: log.child({ name: 'webhooks' }), budgetBytes: config.WEBHOOK_BODY_BUDGET, secret: config.WEBHOOK_SECRET! },
    ),
    port: config.PORT,
    host: config.HOST ?? 'localhost',
    webhookPath: config.WEBHOOK_PATH,
    ...(config.WEBHOOK_PROXY_URL ? { webhookProxy: config.WEBHOOK_PROXY_URL } : {}),
    // Probot's own request log prints every header; the app logs a short line per request instead.
    log: withoutProbotRequestLog(log),
  });
  let octokitFor: OctokitForInstallation | undefined;
  let checks: KeptCheckReporter | undefined;
  let scheduler: Scheduler | undefined;
  let installedRepos: () => Promise<RepoRef[]> = async () => [];
  let readOrgPolicy: (repo: RepoRef) => Promise<unknown> = async () => undefined;
  await server.load((app, options) => {
    octokitFor = async (installationId) =>
      instrumentOctokit(await app.auth(installationId), services.metrics.github);
    // Updates GitHub does not take are kept in the store and sent again (below, with the recovery).
    checks = new KeptCheckReporter({
      checks: new GithubCheckReporter({ octokitFor, publicUrl: config.PUBLIC_URL, redact }),
      store: services.store,
      log: log.child({ name: 'checks' }),
      now: () => new Date(),
    });
    const hostFor = async (repo: RepoRef) => new OctokitRepoHost(await octokitFor!(repo.installationId), repo);
    // Each owner's `.github/task-mgmt.yml`, read when first needed and again on a push to it.
    const orgLog = log.child({ name: 'org-policy' });
    const orgPolicies = new OrgPolicies({ hostFor, store: services.store, now: () => new Date(), log: (level, message, facts) => orgLog[level](facts, message) });
    // One run service behind every way in: comments, buttons, the JSON API and JSON-RPC.
    const runs = new RunService({
      store: services.store,
      queue: services.queue,
      checks,
      hostFor,
      newId: newRunId,
      now: () => new Date(),
      gatewayUrl: config.IPFS_GATEWAY_URL,
      commandsPerMinute: config.COMMANDS_PER_MINUTE,
      taskTypes: taskCatalog(config),
      defaultImage: config.PROCFILE_IMAGE,
      pinTtl: pinTtl(config),
      orgPolicies,
    });
    // Tasks' `schedule:` on each installed repository's default branch, fired as the App.
    const scheduleLog = log.child({ name: 'schedules' });
    installedRepos = installedRepositories(app);
    readOrgPolicy = (repo) => orgPolicies.for(repo);
    scheduler = new Scheduler({
      request: (request) => runs.request(request),
      leases: services.store,
      hostFor,
      listRepos: installedRepos,
      // The same task types /run accepts, those of external workers included.
      taskTypes: taskCatalog(config),
      defaultImage: config.PROCFILE_IMAGE,
      now: () => new Date(),
      appLogin: 'task-mgmt[bot]',
      log: (level, message, facts) => scheduleLog[level](facts, message),
    });
    const readSchedules = scheduler;
    intake = new WebhookIntake({
      store: services.store,
      runs,
      octokitFor,
      redact,
      log: log.child({ name: 'intake' }),
      onDefaultBranchPush: (repo) => readSchedules.load(repo),
    });
    createProbotApp({ intake, observe: (seconds) => services.metrics.webhookAccepted(seconds) })(app, options);
    options.addHandler(healthHandler(services.store));
    const starts = new RunRequests({ runs, installationOf: installationResolver(app) });
    const publicUrl = config.PUBLIC_URL ?? `http://${config.HOST ?? 'localhost'}:${config.PORT}`;
    const dashboard = dashboardFor(config, { app, store: services.store, runs, starts, hostFor, publicUrl, log: log.child({ name: 'dashboard' }) });
    options.addHandler(
      createHttpApi({
        store: services.store,
        tokens: config.API_TOKENS,
        runs: starts,
        reads: runs,
        // The dashboard's pages read runs, logs and events with the session cookie (GET only).
        sessionActor: dashboard.sessionActor,
        resolveUser: githubUserResolver(config.githubApiUrl),
        log: log.child({ name: 'api' }),
        metrics: services.metrics,
        // The app's own gateway: what live pins hold, to whoever may read the runs that pinned it.
        ...(services.blocks
          ? {
              gateway: {
                blocks: services.blocks,
                access: pinnedAccess({ pins: services.store, reads: runs, visibility: async (repo) => (await hostFor(repo)).getVisibility(), now: () => new Date() }),
              },
            }
          : {}),
      }),
    );
    // The dashboard's pages, sign-in and badges: after the API, so it never answers /api, /rpc or /ipfs.
    options.addHandler(dashboard.handler);
  });
  const httpServer = await server.start();
  logRequests(httpServer, log.child({ name: 'http' }));
  const resumed = await intake!.resumePending();
  if (resumed > 0) log.info({ resumed }, 'resuming webhook deliveries accepted before a restart');
  const stopping = new AbortController();
  if (config.WORKERS > 0) await startWorker(config, services, octokitFor!, log, config.WORKERS, stopping.signal);
  // Runs whose worker died go back to the queue: at start-up, then every half lease.
  const recover = () =>
    recoverAbandonedRuns({
      store: services.store,
      queue: services.queue,
      checks: checks!,
      log: log.child({ name: 'recovery' }),
      now: () => new Date(),
      gatewayUrl: config.IPFS_GATEWAY_URL,
    })
      .catch((error: unknown) => log.error({ err: error }, 'could not recover abandoned runs'))
      // Check-run updates GitHub did not take (before a restart too) go once it answers again.
      .then(() => checks!.sendKept())
      .catch((error: unknown) => log.error({ err: error }, 'could not send the kept check-run updates'));
  await recover();
  const recovery = setInterval(() => void recover(), Math.max(1000, Math.floor(config.WORKER_LEASE / 2)));
  // Expired pins, unpinned blocks and output folders nothing needs go every GC_INTERVAL.
  const collector = startCollector(config, services, log);
  // Schedules: read from every installed repository, then a slot missed while down fires now, once.
  const scheduled = await scheduler!.loadAll().catch((error: unknown) => {
    log.error({ err: error }, 'could not list the installed repositories; schedules start with what pushes bring');
    return 0;
  });
  const schedules = scheduler!.start(SCHEDULE_TICK_MS);
  log.info({ schedules: scheduled }, 'schedules read');
  // Each owner's org policy, read once now: one without (or with an invalid one) is logged at start-up.
  const owners = new Map((await installedRepos().catch(() => [])).map((repo) => [repo.owner.toLowerCase(), repo]));
  for (const repo of owners.values()) await readOrgPolicy(repo).catch((error: unknown) => log.warn({ err: error, owner: repo.owner }, 'could not read the org policy'));
  // Handled deliveries, audit entries and logs older than RETENTION go, one replica at a time.
  const pruner = startPruner(config, services, log);
  log.info({ workers: config.WORKERS, queue: queueKind(config) }, 'task-mgmt is ready');

  return new Promise<number>((resolve) => {
    onStopSignal((signal) => {
      log.info({ signal, graceMs: config.SHUTDOWN_GRACE }, 'stopping: taking no more webhooks or runs');
      clearInterval(recovery);
      // No new connections; open ones are cut once the work is done (an SSE stream never ends by itself).
      void server.stop().catch(() => undefined);
      httpServer.closeIdleConnections();
      void stopWithin(
        {
          drain: async () => {
            await Promise.all([intake!.close(), services.queue.close()]);
          },
          handBack: () => stopping.abort(new WorkerStoppingError()),
          release: async () => {
            httpServer.closeAllConnections();
            await collector.stop();
            await schedules.stop();
            await pruner.stop();
            await services.close();
          },
        },
        { graceMs: config.SHUTDOWN_GRACE, log },
      ).then((clean) => {
        log.info({ clean }, 'stopped');
        resolve(0);
      });
    });
  });
}

/**
 * No App yet: the page that registers it on GitHub from app.yml, and the return from GitHub that
 * saves its credentials to .env (read at the next start).
 */
async function serveRegistration(config: Config, log: Logger): Promise<number> {
  const host = config.HOST ?? 'localhost';
  const server = new Server({
    // Probot's server wants an App; nothing here uses it.
    Probot: Probot.defaults({ appId: 1, privateKey: 'unused: no App is registered yet', log }),
    port: config.PORT,
    host,
    // As in serve: one short line per request, and no query (GitHub's return carries a one-time code).
    log: withoutProbotRequestLog(log),
  });
  server.addHandler(
    registrationHandler({
      manifestYaml: readAppManifest(),
      webhookPath: config.WEBHOOK_PATH,
      publicUrl: config.PUBLIC_URL,
      webhookProxyUrl: config.WEBHOOK_PROXY_URL,
      githubWebUrl: config.GHE_HOST ? `${config.GHE_PROTOCOL}://${config.GHE_HOST}` : 'https://github.com',
      githubApiUrl: config.githubApiUrl,
      org: config.GH_ORG,
      envFile: resolvePath('.env'),
      log: log.child({ name: 'registration' }),
    }),
  );
  const httpServer = await server.start();
  logRequests(httpServer, log.child({ name: 'http' }));
  log.info(`APP_ID is not set: open http://${host === '0.0.0.0' ? 'localhost' : host}:${server.port}/ to register the GitHub App`);
  return new Promise<number>((resolve) => {
    onStopSignal(() => {
      httpServer.closeAllConnections();
      void server.stop().catch(() => undefined).finally(() => resolve(0));
    });
  });
}

function healthHandler(store: RunStore) {
  return async (req: IncomingMessage, res: ServerResponse): Promise<boolean> => {
    if (req.method !== 'GET' || req.url?.split('?')[0] !== '/healthz') return false;
    try {
      await store.listQueued(1);
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'ok' }));
    } catch (error) {
      res.writeHead(503, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'unavailable', reason: 'run store unreachable' }));
    }
    return true;
  };
}
