/**
 * The JSON API's and JSON-RPC's create and cancel, through the same use cases as comments:
 * `requestRun` (policy, review gate, manifest, check runs, audit) and `cancelRun`. An API
 * caller gets its answer in the response, so nothing is posted on GitHub for it.
 */
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { Probot } from 'probot';
import { cancelRun } from '../../core/runs/cancel-run.js';
import type { CommandDeps, CommandLimits } from '../../core/runs/command-deps.js';
import type { IdGenerator } from '../../core/runs/ids.js';
import { requestRun } from '../../core/runs/request-run.js';
import { authorize } from '../../core/policy/authorize.js';
import type { TaskTypeCatalog } from '../../core/manifest/load-manifest.js';
import type { CheckReporter } from '../../ports/check-reporter.js';
import type { RepoHost } from '../../ports/repo-host.js';
import type { RunQueue } from '../../ports/run-queue.js';
import type { RunStore } from '../../ports/run-store.js';
import type { CancelOutcome, CreateOutcome, RunUseCases } from '../http/run-operations.js';
import type { CreateRunRequest } from '../http/api-schemas.js';
import type { ApiActor } from '../http/http-io.js';
import { OctokitRepoHost } from './octokit-repo-host.js';
import { httpStatus, type OctokitForInstallation } from './octokit.js';

export interface ApiRunUseCasesDeps {
  probot: Probot;
  octokitFor: OctokitForInstallation;
  store: RunStore;
  queue: RunQueue;
  checks: CheckReporter;
  log: Logger;
  newId: IdGenerator;
  gatewayUrl: string;
  limits: CommandLimits;
  taskTypes: TaskTypeCatalog;
  defaultImage: string;
}

/** A RepoHost that reads from GitHub but says nothing there: the API caller gets the answer. */
function quiet(host: RepoHost): RepoHost {
  return {
    getPermission: (user) => host.getPermission(user),
    getPullRequest: (n) => host.getPullRequest(n),
    getDefaultBranchHead: () => host.getDefaultBranchHead(),
    listRoot: (sha) => host.listRoot(sha),
    readFile: (path, sha) => host.readFile(path, sha),
    listReviews: (n) => host.listReviews(n),
    listChangedFiles: (n) => host.listChangedFiles(n),
    react: async () => undefined,
    reply: async () => undefined,
  };
}

export class ApiRunUseCases implements RunUseCases {
  constructor(private readonly deps: ApiRunUseCasesDeps) {}

  async create(input: CreateRunRequest, actor: ApiActor): Promise<CreateOutcome> {
    const [owner = '', name = ''] = input.repo.split('/');
    let installationId: number;
    try {
      const app = await this.deps.probot.auth();
      installationId = (await app.rest.apps.getRepoInstallation({ owner, repo: name })).data.id;
    } catch (error) {
      if (httpStatus(error) === 404) return { kind: 'not_found', reason: `the App is not installed on ${input.repo}, or it does not exist` };
      throw error;
    }
    const repo = { owner, name, installationId };
    const pull = input.ref === undefined ? null : /^pull\/(\d+)$/.exec(input.ref);
    if (input.ref !== undefined && !pull) {
      return { kind: 'refused', reason: `ref \`${input.ref}\` is neither \`pull/<number>\` nor unset (the default branch); other branches are not reviewed and do not run` };
    }
    const host = quiet(new OctokitRepoHost(await this.deps.octokitFor(installationId), repo));
    return requestRun(this.commandDeps(host), {
      repo,
      number: pull ? Number(pull[1]) : 0,
      isPullRequest: pull !== null,
      actor: actor.name,
      actorKind: actor.kind,
      task: input.task ?? null,
      params: input.params ?? {},
      trigger: 'api',
      commentId: null,
    });
  }

  async cancel(runId: string, actor: ApiActor): Promise<CancelOutcome> {
    const run = await this.deps.store.getRun(runId);
    if (!run) return { kind: 'not_found', reason: `there is no run ${runId}` };
    if (run.state !== 'queued' && run.state !== 'running') return { kind: 'already_final', run };
    if (actor.kind === 'user') {
      // A user token gets the rights that user has through comments: the same decision.
      const host = new OctokitRepoHost(await this.deps.octokitFor(run.repo.installationId), run.repo);
      const decision = authorize({ actor: actor.name, permission: await host.getPermission(actor.name) });
      if (!decision.allowed) return { kind: 'refused', reason: decision.reason.replace('running tasks', 'cancelling runs') };
    }
    const done = await cancelRun({ ...this.deps, now: () => new Date() }, run, `cancelled by ${actor.name} through the API`);
    await this.deps.store.audit({
      at: new Date(),
      repo: `${run.repo.owner}/${run.repo.name}`,
      number: run.number,
      actor: actor.name,
      action: 'cancel',
      allowed: true,
      reason: done ? `${actor.kind === 'service' ? 'service token' : 'GitHub user token'}; cancelled ${run.id}` : `${run.id} had already ended`,
      runId: run.id,
    });
    const after = (await this.deps.store.getRun(runId))!;
    return done ? { kind: 'cancelled', run: after } : { kind: 'already_final', run: after };
  }

  private commandDeps(host: RepoHost): CommandDeps {
    return {
      store: this.deps.store,
      queue: this.deps.queue,
      checks: this.deps.checks,
      host,
      log: this.deps.log,
      newId: this.deps.newId,
      now: () => new Date(),
      gatewayUrl: this.deps.gatewayUrl,
      limits: this.deps.limits,
      taskTypes: this.deps.taskTypes,
      defaultImage: this.deps.defaultImage,
    };
  }
}

/**
 * Resolves a GitHub user token to its login with `GET /user`, remembering answers for a minute
 * so a client polling the API does not spend the user's rate limit. The token is only ever sent
 * to GitHub, and never logged.
 */
export function githubUserResolver(apiUrl: string, fetchImpl: typeof fetch = fetch): (token: string) => Promise<string | null> {
  const cache = new Map<string, { login: string | null; until: number }>();
  return async (token) => {
    const key = createHash('sha256').update(token).digest('hex');
    const known = cache.get(key);
    if (known && known.until > Date.now()) return known.login;
    const response = await fetchImpl(`${apiUrl}/user`, { headers: { authorization: `token ${token}`, accept: 'application/vnd.github+json' } });
    let login: string | null = null;
    if (response.ok) {
      const body = (await response.json()) as { login?: unknown; type?: unknown };
      login = typeof body.login === 'string' && body.type !== 'Bot' ? body.login : null;
    } else if (response.status !== 401 && response.status !== 403) {
      throw new Error(`GitHub answered ${response.status} when asked whose token this is`);
    }
    if (cache.size > 10_000) cache.clear();
    cache.set(key, { login, until: Date.now() + 60_000 });
    return login;
  };
}
