/**
 * The run service: every use case that starts, stops or re-checks runs, whichever way it came in
 * (a comment, a check run's button, the JSON API, JSON-RPC, the CLI, a schedule). It takes a typed
 * requester, owns the policy, the audit log and the command limit, and returns outcomes as data.
 * It writes check runs (they are part of a run's life) but never replies or reacts: each adapter
 * renders the outcome its own way.
 */
import { authorize } from '../policy/authorize.js';
import { OrgPolicies } from '../policy/org-policies.js';
import { orgRefusal } from '../policy/org-policy.js';
import { roleFromPermission } from '../policy/roles.js';
import type { ResolvedTask } from '../manifest/load-manifest.js';
import { readManifest } from '../manifest/read-manifest.js';
import type { RepoHost } from '../../ports/repo-host.js';
import { closedApprovalReport, finishedReport, staleApprovalReport } from '../runs/check-text.js';
import { defaultPinTtl, pinTtlProblem } from '../pins/pin-ttl.js';
import type { RepoRef, Requester, Run } from '../runs/run.js';
import { admitCommand, record, type AuditAction } from './audit.js';
import { quote } from '../text/quote.js';
import type { BeforeStartOutcome, BranchPushOutcome, CancelOutcome, ClosedOutcome, HelpOutcome, PinOutcome, PushOutcome, Refused, RefusalCode, RequestOutcome, UsageOutcome } from './outcomes.js';
import { ReadAccess } from './read-access.js';
import { askOnce } from './request-host.js';
import { requestRuns } from './request-runs.js';
import { fullName, headOf, numberOf, orgPolicyOf, permissionOf, type CancelScope, type RunRequest, type RunServiceDeps, type RunTarget } from './requests.js';

export * from './requests.js';
export type { AuditAction } from './audit.js';
export { ReadAccess } from './read-access.js';
export { OrgPolicies } from '../policy/org-policies.js';
export { Scheduler, scheduleLeaseName, type Schedule } from '../schedules/scheduler.js';
export { describeOrgPolicy, orgRefusal, parseOrgPolicy, orgPolicyJsonSchema, type OrgPolicyState } from '../policy/org-policy.js';

export type * from './outcomes.js';

export class RunService {
  private readonly reads: ReadAccess;

  constructor(private readonly deps: RunServiceDeps) {
    this.reads = new ReadAccess(deps);
  }

  /** Whether the requester may see the runs of `repo` (reads follow GitHub; see read-access.ts). */
  canRead(requester: Requester, repo: RepoRef): Promise<boolean> {
    return this.reads.canRead(requester, repo);
  }

  /** The runs the requester may see, in their order: what listings show. */
  readable(requester: Requester, runs: readonly Run[]): Promise<Run[]> {
    return this.reads.readable(requester, runs);
  }

  /** `/run`, `POST /api/runs`, `runs.create`, `task-mgmt run`, a schedule. */
  async request(request: RunRequest): Promise<RequestOutcome> {
    const limited = await this.admit(request, request.trigger === 'rerun' ? 'Re-run' : '/run');
    if (limited) return limited;
    return this.decideRequest(request);
  }

  /** A request to run, once admitted under the command limit. */
  private async decideRequest(request: RunRequest): Promise<RequestOutcome> {
    const action: AuditAction = request.trigger === 'rerun' ? 'rerun' : 'run';
    const host = askOnce(await this.deps.hostFor(request.repo));
    const outcome = await requestRuns({ ...this.deps, host }, request);
    const number = numberOf(request.target);
    if (outcome.kind === 'refused') {
      await record(this.deps.store, this.deps.now(), { repo: request.repo, number, requester: request.requester, action, allowed: false, reason: outcome.reason });
    }
    return outcome;
  }

  /** `/retry`: run again, at the same SHA, each task whose latest run here did not succeed. */
  async retry(input: { requester: Requester; repo: RepoRef; target: Extract<RunTarget, { number: number }>; commentId?: number | null }): Promise<RequestOutcome> {
    const number = input.target.number;
    // One command however many tasks it runs again.
    const limited = await this.admit({ ...input, number }, '/retry');
    if (limited) return limited;
    const recent = await this.deps.store.listRuns({ repo: fullName(input.repo), number, limit: 100 });
    const latestByTask = new Map<string, Run>();
    for (const run of recent) if (!latestByTask.has(run.task)) latestByTask.set(run.task, run);
    const failed = [...latestByTask.values()].filter((run) => run.state === 'failed' || run.state === 'timed_out' || run.state === 'cancelled');
    if (failed.length === 0) {
      return this.refuse({ ...input, number }, 'retry', 'nothing_to_do', `no run of #${number} failed: there is nothing to retry.`);
    }
    const outcomes: RequestOutcome[] = [];
    for (const run of failed) {
      outcomes.push(
        await this.decideRequest({ requester: input.requester, repo: input.repo, target: input.target, task: run.task, params: run.params, trigger: 'comment', commentId: input.commentId ?? null, expectedSha: run.sha }),
      );
    }
    const notQueued = outcomes.find((outcome) => outcome.kind !== 'queued');
    if (notQueued) return notQueued;
    return { kind: 'queued', sha: failed[0]!.sha, runs: outcomes.flatMap((o) => (o.kind === 'queued' ? o.runs : [])) };
  }

  /** The check run's Re-run button: the clicking user asks again for the same task, at `headSha`. */
  async rerun(input: { requester: Requester; run: Run; headSha: string }): Promise<RequestOutcome> {
    const { run } = input;
    const target: RunTarget =
      run.number === null ? { kind: 'default_branch' } : run.isPullRequest ? { kind: 'pull_request', number: run.number } : { kind: 'issue', number: run.number };
    return this.request({ requester: input.requester, repo: run.repo, target, task: run.task, params: run.params, trigger: 'rerun', commentId: null, expectedSha: input.headSha });
  }

  /**
   * `/cancel [run-id]`, the Cancel button, `POST /api/runs/:id/cancel`, `runs.cancel`. With `repo`
   * the run must belong to it; without (the API names only the run), the run's own repository.
   */
  async cancel(input: { requester: Requester; repo?: RepoRef; scope: CancelScope }): Promise<CancelOutcome> {
    const { scope, requester } = input;
    const found = scope.kind === 'run' ? await this.deps.store.getRun(scope.runId) : null;
    const repo = input.repo ?? found?.repo;
    const missing = scope.kind === 'run' && (!found || !repo || fullName(found.repo) !== fullName(repo));
    // Named by id alone (the API), a run of a repository the requester cannot read does not exist for them.
    const hidden = !input.repo && found !== null && !(await this.canRead(requester, found.repo));
    if (scope.kind === 'run' && (missing || hidden) && !input.repo) return { kind: 'refused', code: 'not_found', reason: `there is no run ${quote(scope.runId)}.` };
    const number = scope.kind === 'all' ? scope.number : missing ? null : found!.number;
    const asked = { repo: repo!, number, requester };
    // Every answer below is a reply on GitHub, so each counts toward the limit.
    const limited = await this.admit(asked, '/cancel');
    if (limited) return limited;
    if (scope.kind === 'run' && missing) return this.refuse(asked, 'cancel', 'not_found', `there is no run ${quote(scope.runId)} in this repository.`);
    // A run that has ended cannot be cancelled by anyone: said before any role is looked up.
    if (found && found.state !== 'queued' && found.state !== 'running') return { kind: 'already_ended', run: found };

    const host = await this.deps.hostFor(repo!);
    const decision = authorize({ actor: requester.login, permission: await permissionOf(host, requester), action: 'cancel' });
    if (!decision.allowed) return this.refuse(asked, 'cancel', 'role', decision.reason);

    let runs: Run[];
    if (found) {
      runs = [found];
    } else {
      runs = await this.deps.store.listRuns({ repo: fullName(repo!), number: number!, states: ['queued', 'running'] });
      if (runs.length === 0) return this.refuse(asked, 'cancel', 'nothing_to_do', `no run of #${number} is queued or running.`);
    }
    const by = requester.kind === 'user' ? `@${requester.login}` : requester.kind === 'service' ? `${requester.login} through the API` : 'the App';
    const cancelled: Run[] = [];
    for (const run of runs) {
      const ended = await this.end(run, `cancelled by ${by}`);
      if (ended) cancelled.push(ended);
    }
    const what = cancelled.length > 0 ? cancelled.map((run) => run.id).join(', ') : 'nothing (already ended)';
    await record(this.deps.store, this.deps.now(), { ...asked, action: 'cancel', allowed: true, reason: `${decision.reason}; cancelled ${what}`, runId: cancelled[0]?.id ?? null });
    if (found && cancelled.length === 0) return { kind: 'already_ended', run: (await this.deps.store.getRun(found.id)) ?? found };
    return { kind: 'cancelled', runs: cancelled };
  }

  /**
   * `/pin <run-id> <duration>`, `POST /api/runs/:id/pin`, `runs.pin`: the run's outputs (and its
   * provenance record) stay pinned until the later of their expiry and now + `durationMs`, which
   * may not pass PIN_TTL_MAX. Needs the write role on the run's repository. With `repo` (a
   * comment) the run must belong to it, and `number` is where the command was given; without (the
   * API names only the run), a run the requester cannot read does not exist for them.
   */
  async pin(input: { requester: Requester; repo?: RepoRef; number?: number | null; runId: string; durationMs: number }): Promise<PinOutcome> {
    const { requester, runId } = input;
    const found = await this.deps.store.getRun(runId);
    const repo = input.repo ?? found?.repo;
    const missing = !found || !repo || fullName(found.repo) !== fullName(repo);
    const hidden = !input.repo && found !== null && !(await this.canRead(requester, found.repo));
    if ((missing || hidden) && !input.repo) return { kind: 'refused', code: 'not_found', reason: `there is no run ${quote(runId)}.` };
    const asked = { repo: repo!, number: input.number !== undefined ? input.number : (found?.number ?? null), requester };
    const limited = await this.admit(asked, '/pin');
    if (limited) return limited;
    if (missing) return this.refuse(asked, 'pin', 'not_found', `there is no run ${quote(runId)} in this repository.`);
    const run = found!;
    const tooLong = pinTtlProblem(input.durationMs, this.deps.pinTtl ?? defaultPinTtl, '`/pin`');
    if (tooLong) return this.refuse(asked, 'pin', 'params', tooLong);

    const host = await this.deps.hostFor(repo!);
    const decision = authorize({ actor: requester.login, permission: await permissionOf(host, requester), action: 'pin' });
    if (!decision.allowed) return this.refuse(asked, 'pin', 'role', decision.reason);

    const pinned = (await this.deps.store.listPins(run.id)).some((pin) => pin.root !== null);
    const now = this.deps.now();
    if (!pinned) return this.refuse(asked, 'pin', 'nothing_to_do', nothingPinned(run, now));
    const pinnedUntil = await this.deps.store.extendPins(run.id, new Date(now.getTime() + input.durationMs));
    // Collected between the two steps: as if it had been before.
    if (!pinnedUntil) return this.refuse(asked, 'pin', 'nothing_to_do', nothingPinned(run, now));
    const updated = (await this.deps.store.getRun(run.id)) ?? run;
    const extended = run.pinnedUntil === null || pinnedUntil.getTime() > run.pinnedUntil.getTime();
    const until = pinnedUntil.toISOString();
    await record(this.deps.store, now, {
      ...asked,
      action: 'pin',
      allowed: true,
      reason: `${decision.reason}; ${extended ? `pinned ${run.id} until ${until}` : `${run.id} was already pinned until ${until}`}`,
      runId: run.id,
    });
    // The check run shows the current expiry.
    if (extended && updated.checkRunId !== null) await this.deps.checks.update(updated, finishedReport(updated, this.deps.gatewayUrl));
    return { kind: 'pinned', run: updated, pinnedUntil, extended };
  }

  /**
   * New commits on a pull request: runs of the old head are cancelled unless the new head's
   * manifest says `cancel_on_push: false` (an unreadable manifest keeps the safe default), and
   * approval requests for the old head are marked stale.
   */
  async pushed(input: { repo: RepoRef; number: number; headSha: string }): Promise<PushOutcome> {
    const active = (await this.deps.store.listRuns({ repo: fullName(input.repo), number: input.number, states: ['queued', 'running'] })).filter(
      (run) => run.sha !== input.headSha,
    );
    const cancelled: string[] = [];
    if (active.length > 0 && (await this.cancelsOnPush(input.repo, input.headSha))) {
      for (const run of active) {
        const reason = `new commits were pushed to #${input.number} (the head is now \`${input.headSha.slice(0, 12)}\`), so the run of \`${run.sha.slice(0, 12)}\` was cancelled`;
        if (await this.end(run, reason)) cancelled.push(run.id);
      }
    }
    const waits = await this.deps.store.takeApprovalWaits(fullName(input.repo), input.number);
    const stale = waits.filter((wait) => wait.sha !== input.headSha);
    for (const wait of stale) {
      await this.deps.checks.update({ repo: input.repo, checkRunId: wait.checkRunId }, staleApprovalReport(wait.sha, input.headSha));
    }
    if (cancelled.length > 0 || stale.length > 0) {
      await record(this.deps.store, this.deps.now(), {
        repo: input.repo,
        number: input.number,
        requester: { kind: 'app', login: 'push' },
        action: 'push',
        allowed: true,
        reason: `head is now ${input.headSha}; cancelled ${cancelled.length} run(s), ${stale.length} approval request(s) now stale`,
      });
    }
    return { cancelled, stale: stale.length };
  }

  /**
   * A push to a branch (`push` event): to the default branch of `<owner>/.github`, the org policy
   * is read again at once (a change is recorded in the audit log by the policy cache). The outcome
   * says whether the default branch moved, whose manifest holds the schedules.
   */
  async branchPushed(input: { repo: RepoRef; ref: string; defaultBranch: string | null; headSha: string }): Promise<BranchPushOutcome> {
    const onDefault = input.defaultBranch !== null && input.ref === `refs/heads/${input.defaultBranch}`;
    let orgPolicy: BranchPushOutcome['orgPolicy'] = null;
    if (onDefault && OrgPolicies.holdsPolicy(input.repo) && this.deps.orgPolicies) {
      orgPolicy = (await this.deps.orgPolicies.refresh(input.repo.owner, input.repo.installationId)).kind;
    }
    return { defaultBranch: onDefault, orgPolicy };
  }

  /**
   * A pull request closed or merged: nothing of it runs any more. Its queued and running runs are
   * cancelled with the reason, and its requests waiting for an approval are ended.
   */
  async closed(input: { repo: RepoRef; number: number; merged: boolean }): Promise<ClosedOutcome> {
    const why = `pull request #${input.number} was ${input.merged ? 'merged' : 'closed'}`;
    const cancelled: string[] = [];
    for (const run of await this.deps.store.listRuns({ repo: fullName(input.repo), number: input.number, states: ['queued', 'running'] })) {
      if (await this.end(run, why)) cancelled.push(run.id);
    }
    const waits = await this.deps.store.takeApprovalWaits(fullName(input.repo), input.number);
    for (const wait of waits) await this.deps.checks.update({ repo: input.repo, checkRunId: wait.checkRunId }, closedApprovalReport(wait.sha, why));
    if (cancelled.length > 0 || waits.length > 0) {
      const what = cancelled.length > 0 ? cancelled.join(', ') : 'nothing';
      await record(this.deps.store, this.deps.now(), {
        repo: input.repo,
        number: input.number,
        requester: { kind: 'app', login: 'close' },
        action: 'close',
        allowed: true,
        reason: `${why}; cancelled ${what}; ${waits.length} approval request(s) ended`,
        runId: cancelled[0] ?? null,
      });
    }
    return { cancelled, ended: waits.length };
  }

  /** `/help`: the tasks at the head a `/run` here would run. Counts toward the command limit. */
  async help(input: { requester: Requester; repo: RepoRef; target: RunTarget }): Promise<HelpOutcome> {
    const limited = await this.admit({ ...input, number: numberOf(input.target) }, '/help');
    if (limited) return limited;
    try {
      const host = askOnce(await this.deps.hostFor(input.repo));
      const sha = await headOf(host, input.target);
      const [read, org] = await Promise.all([readManifest(host, sha, this.deps.taskTypes, this.deps.defaultImage), orgPolicyOf(this.deps, input.repo)]);
      if (read.ok) return { kind: 'tasks', sha, manifest: read.manifest, org };
      return 'errors' in read ? { kind: 'manifest_errors', sha, errors: read.errors, org } : { kind: 'no_tasks', sha, reason: read.reason, org };
    } catch (error) {
      return { kind: 'unavailable', error: error instanceof Error ? error.message : String(error) };
    }
  }

  /**
   * A comment that was no command (a near miss such as `/rnu`, a usage error): its answer is a
   * reply like any other, so it counts toward the command limit and goes silent past it.
   */
  async usage(input: { requester: Requester; repo: RepoRef; number: number; message: string }): Promise<UsageOutcome> {
    const limited = await this.admit(input, 'a comment that is no command');
    return limited ?? { kind: 'usage', message: input.message };
  }

  /**
   * A request the adapter could not get decided (GitHub failed past its retries): nothing ran,
   * and the audit log says why. Fail closed.
   */
  async undecided(input: { requester: Requester; repo: RepoRef; number: number | null; action: AuditAction; error: string }): Promise<void> {
    await record(this.deps.store, this.deps.now(), { ...input, allowed: false, reason: `could not decide: ${input.error}` });
  }

  /** Ends a queued or running run as cancelled and stops its container; null if it had ended. */
  private async end(run: Run, reason: string): Promise<Run | null> {
    const cancelled = await this.deps.store.transition(run.id, 'cancel', this.deps.now(), { error: reason });
    if (!cancelled) return null;
    await this.deps.queue.cancel(run.id);
    if (cancelled.checkRunId !== null) await this.deps.checks.update(cancelled, finishedReport(cancelled, this.deps.gatewayUrl));
    return cancelled;
  }

  private async cancelsOnPush(repo: RepoRef, headSha: string): Promise<boolean> {
    try {
      const read = await readManifest(await this.deps.hostFor(repo), headSha, this.deps.taskTypes, this.deps.defaultImage);
      return read.ok ? read.manifest.cancelOnPush : true;
    } catch {
      return true;
    }
  }

  /** Null when the command is within the requester's limit; otherwise the refusal (already on record). */
  private async admit(asked: { repo: RepoRef; number?: number | null; target?: RunTarget; requester: Requester }, command: string): Promise<Refused | null> {
    const number = numberAsked(asked);
    const admission = await admitCommand(this.deps.store, this.deps.now(), { repo: asked.repo, number, requester: asked.requester, command }, this.deps.commandsPerMinute);
    if (admission.admitted) return null;
    return { kind: 'refused', code: 'rate_limited', reason: admission.reason, ...(admission.silent ? { silent: true } : {}) };
  }

  private async refuse(
    asked: { repo: RepoRef; number?: number | null; target?: RunTarget; requester: Requester },
    action: AuditAction,
    code: RefusalCode,
    reason: string,
  ): Promise<Refused> {
    const number = numberAsked(asked);
    await record(this.deps.store, this.deps.now(), { repo: asked.repo, number, requester: asked.requester, action, allowed: false, reason });
    return { kind: 'refused', code, reason };
  }
}

/** Why a run has nothing to keep pinned: not finished, nothing added, or its pin ended and was collected. */
function nothingPinned(run: Run, now: Date): string {
  if (run.state === 'queued' || run.state === 'running') return `run \`${run.id}\` has not finished; its outputs are pinned once they are added.`;
  if (run.pinnedUntil !== null && run.pinnedUntil.getTime() <= now.getTime()) {
    return `the pin of run \`${run.id}\` ended on ${run.pinnedUntil.toISOString().slice(0, 10)} and its outputs were collected; run the task again to make them anew.`;
  }
  return `run \`${run.id}\` has no outputs to pin: it ended ${run.state.replace('_', ' ')} before adding any.`;
}

/** The pull request or issue a refusal or a counted command belongs to: named, or the target's. */
function numberAsked(asked: { number?: number | null; target?: RunTarget }): number | null {
  return asked.number !== undefined ? asked.number : asked.target ? numberOf(asked.target) : null;
}

/**
 * The SHA checked is the SHA run: just before a task starts, the worker asks again that the pull
 * request's head is still the pinned SHA and that the requester still has the role the request
 * needed (`run.requiredRole`), whoever the requester is. A scheduled run's SHA must still be the
 * default branch's HEAD, and the org policy must still allow the task. GitHub failing here is
 * retryable; it never lets the task start unchecked.
 */
export async function checkBeforeStart(host: RepoHost, run: Run, orgPolicies?: Pick<OrgPolicies, 'for'>): Promise<BeforeStartOutcome> {
  const requester: Requester = { kind: run.requesterKind, login: run.requestedBy };
  const scheduled = run.trigger === 'schedule';
  const [pull, permission, head, org] = await Promise.all([
    run.isPullRequest && run.number !== null ? host.getPullRequest(run.number) : null,
    permissionOf(host, requester),
    scheduled ? host.getDefaultBranchHead() : null,
    orgPolicies ? orgPolicies.for(run.repo) : null,
  ]);
  if (pull && pull.state !== 'open') return { allowed: false, reason: `pull request #${run.number} was ${pull.state} before the task started; nothing ran` };
  if (pull && pull.headSha !== run.sha) {
    return {
      allowed: false,
      reason: `the head of #${run.number} moved from \`${run.sha.slice(0, 12)}\` to \`${pull.headSha.slice(0, 12)}\` before the task started; nothing ran`,
    };
  }
  if (head && head.sha !== run.sha) {
    return { allowed: false, reason: `${head.branch} moved from \`${run.sha.slice(0, 12)}\` to \`${head.sha.slice(0, 12)}\` before the scheduled task started; nothing ran` };
  }
  if (org) {
    // The task as recorded: its type, and the limits it asked for.
    const task = {
      name: run.task,
      type: run.taskType,
      network: run.spec.network,
      ...(run.spec.timeoutMs !== undefined ? { timeoutMs: run.spec.timeoutMs } : {}),
      resources: { cpus: run.spec.cpus, memory: run.spec.memoryBytes, pids: run.spec.pids },
    } as ResolvedTask;
    const refusal = orgRefusal(org, { repo: run.repo, tasks: [task], role: roleFromPermission(permission), actor: requester.login, manifestRole: run.requiredRole, scheduled });
    if (refusal) return { allowed: false, reason: `checked again before the task started: ${refusal} Nothing ran.` };
  }
  const decision = authorize({ actor: requester.login, permission, required: run.requiredRole });
  if (!decision.allowed) return { allowed: false, reason: `checked again before the task started: ${decision.reason} Nothing ran.` };
  const where = pull ? `\`${run.sha.slice(0, 12)}\` is still the head` : head ? `\`${run.sha.slice(0, 12)}\` is still the head of ${head.branch}` : `\`${run.sha.slice(0, 12)}\` was pinned`;
  return { allowed: true, note: `checked again before starting: ${where} and ${decision.reason}` };
}
