/**
 * The JSON API's and JSON-RPC's create and cancel: the caller is turned into a requester, the
 * repository into its App installation, and the run service decides, exactly as for a comment.
 * The outcome goes back in the response; nothing is posted on GitHub for an API caller.
 */
import { createHash } from 'node:crypto';
import type { Probot } from 'probot';
import type { RunService, RunTarget } from '../../core/run-service/run-service.js';
import type { Requester } from '../../core/runs/run.js';
import type { CancelOutcome, CreateOutcome, RunUseCases } from '../http/run-operations.js';
import type { CreateRunRequest } from '../http/api-schemas.js';
import type { ApiActor } from '../http/http-io.js';
import { httpStatus } from './octokit.js';

export interface ApiRunUseCasesDeps {
  probot: Probot;
  runs: RunService;
}

function requesterOf(actor: ApiActor): Requester {
  return { kind: actor.kind, login: actor.name };
}

export class ApiRunUseCases implements RunUseCases {
  constructor(private readonly deps: ApiRunUseCasesDeps) {}

  async create(input: CreateRunRequest, actor: ApiActor): Promise<CreateOutcome> {
    const [owner = '', name = ''] = input.repo.split('/');
    const pull = input.ref === undefined ? null : /^pull\/(\d+)$/.exec(input.ref);
    if (input.ref !== undefined && !pull) {
      return { kind: 'refused', reason: `ref \`${input.ref}\` is neither \`pull/<number>\` nor unset (the default branch); other branches are not reviewed and do not run` };
    }
    let installationId: number;
    try {
      const app = await this.deps.probot.auth();
      installationId = (await app.rest.apps.getRepoInstallation({ owner, repo: name })).data.id;
    } catch (error) {
      if (httpStatus(error) === 404) return { kind: 'not_found', reason: `the App is not installed on ${input.repo}, or it does not exist` };
      throw error;
    }
    const target: RunTarget = pull ? { kind: 'pull_request', number: Number(pull[1]) } : { kind: 'default_branch' };
    const outcome = await this.deps.runs.request({
      requester: requesterOf(actor),
      repo: { owner, name, installationId },
      target,
      task: input.task ?? null,
      params: input.params ?? {},
      trigger: 'api',
    });
    return outcome.kind === 'refused' ? { kind: 'refused', reason: outcome.reason } : outcome;
  }

  async cancel(runId: string, actor: ApiActor): Promise<CancelOutcome> {
    const outcome = await this.deps.runs.cancel({ requester: requesterOf(actor), scope: { kind: 'run', runId } });
    switch (outcome.kind) {
      case 'cancelled':
        return { kind: 'cancelled', run: outcome.runs[0]! };
      case 'already_ended':
        return { kind: 'already_final', run: outcome.run };
      case 'refused':
        return outcome.code === 'not_found' ? { kind: 'not_found', reason: outcome.reason } : { kind: 'refused', reason: outcome.reason };
    }
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
