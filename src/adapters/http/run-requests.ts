/**
 * The JSON API's and JSON-RPC's create, cancel and pin: the caller becomes a requester, the repository
 * its App installation, and the run service decides, exactly as for a comment. The outcome goes
 * back in the response; nothing is posted on GitHub for an API caller.
 */
import type { PinOutcome, RunService, RunTarget } from '../../core/run-service/run-service.js';
import type { CreateRunRequest } from './api-schemas.js';
import { ApiError, type ApiActor } from './http-io.js';
import { QueueUnavailableError } from '../../ports/errors.js';
import { requesterOf, type CancelOutcome, type CreateOutcome, type RunUseCases } from './run-operations.js';

export interface RunRequestsDeps {
  runs: RunService;
  /** The App's installation on a repository; null when it is not installed there. */
  installationOf: (repo: { owner: string; name: string }) => Promise<number | null>;
}

export class RunRequests implements RunUseCases {
  constructor(private readonly deps: RunRequestsDeps) {}

  async create(input: CreateRunRequest, actor: ApiActor): Promise<CreateOutcome> {
    const [owner = '', name = ''] = input.repo.split('/');
    const pull = input.ref === undefined ? null : /^pull\/(\d+)$/.exec(input.ref);
    if (input.ref !== undefined && !pull) {
      return { kind: 'refused', reason: `ref \`${input.ref}\` is neither \`pull/<number>\` nor unset (the default branch); other branches are not reviewed and do not run` };
    }
    const installationId = await this.deps.installationOf({ owner, name });
    if (installationId === null) return { kind: 'not_found', reason: `the App is not installed on ${input.repo}, or it does not exist` };
    const target: RunTarget = pull ? { kind: 'pull_request', number: Number(pull[1]) } : { kind: 'default_branch' };
    const outcome = await this.deps.runs
      .request({
        requester: requesterOf(actor),
        repo: { owner, name, installationId },
        target,
        task: input.task ?? null,
        params: input.params ?? {},
        trigger: 'api',
      })
      .catch((error: unknown) => {
        // The queue's server is down: say so with 503 rather than a 500 "it is logged".
        throw error instanceof QueueUnavailableError ? new ApiError('unavailable', error.message, { cause: error }) : error;
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

  pin(runId: string, durationMs: number, actor: ApiActor): Promise<PinOutcome> {
    return this.deps.runs.pin({ requester: requesterOf(actor), runId, durationMs });
  }
}
