/**
 * Deciding a request to run, and queueing it when allowed. The check run is what the requester
 * waits for, so the facts are gathered in as few rounds of GitHub requests as the dependencies
 * between them allow:
 *   1. the requester's role, the pull request (its head SHA and author), its changed files and
 *      its reviews — or the default branch's HEAD;
 *   2. the task definition at that SHA (the three candidate files at once), the author's role
 *      and the approving reviewers' roles;
 *   3. only for a `task-mgmt.yml`: the Dockerfiles and Procfiles it names.
 * Then the policy decides, and the runs are recorded, given their check runs and queued.
 * Refusals come back as data; the caller records them in the audit log.
 */
import { authorize, type Decision, type PullRequestFacts } from '../policy/authorize.js';
import { latestApprovals } from '../policy/review-gate.js';
import { resolveParams, selectTasks, type LoadedManifest, type ManifestError, type ResolvedTask } from '../manifest/load-manifest.js';
import { readManifest } from '../manifest/read-manifest.js';
import { changedTaskFiles } from '../manifest/task-files.js';
import type { CollaboratorPermission, PullRequestInfo, RepoHost, ReviewInfo } from '../../ports/repo-host.js';
import { approvalNeededReport, finishedReport, manifestErrorReport, queuedReport } from '../runs/check-text.js';
import type { Run, RunSpec } from '../runs/run.js';
import { defaultPinTtl, effectivePinTtl, pinTtlProblem, type PinTtlLimits } from '../pins/pin-ttl.js';
import { quote } from '../text/quote.js';
import { errorMessage } from '../../ports/errors.js';
import { record } from './audit.js';
import type { Refused, RefusalCode, RequestOutcome } from './outcomes.js';
import { fullName, numberOf, orgPolicyOf, permissionOf, type RunRequest, type RunServiceDeps } from './requests.js';
import { invalidOrgPolicyLine, orgCaps, orgRefusal, requiredRoleFor, scheduleIntervalRefusal, type OrgCaps } from '../policy/org-policy.js';
import { roleFromPermission } from '../policy/roles.js';
import type { RequiredRole } from '../runs/run.js';

type Deps = RunServiceDeps & { host: RepoHost };

const refused = (code: RefusalCode, reason: string): Refused => ({ kind: 'refused', code, reason });

export async function requestRuns(deps: Deps, request: RunRequest): Promise<RequestOutcome> {
  const { host } = deps;
  const { target } = request;
  const isPull = target.kind === 'pull_request';

  // Round 1: nothing here depends on anything else.
  const [permission, head, changed, reviews, org] = await Promise.all([
    permissionOf(host, request.requester),
    isPull ? host.getPullRequest(target.number) : host.getDefaultBranchHead(target.defaultBranch),
    isPull ? host.listChangedFiles(target.number) : Promise.resolve([]),
    isPull ? host.listReviews(target.number) : Promise.resolve([]),
    orgPolicyOf(deps, request.repo),
  ]);
  // An invalid org policy refuses every run of the org, before anything else is looked at.
  if (org.kind === 'invalid') return refused('org_policy', `${invalidOrgPolicyLine(org)}.`);
  const early = authorize({ actor: request.requester.login, permission });
  if (!early.allowed) return refused('role', early.reason);
  const pull = isPull ? (head as PullRequestInfo) : null;
  if (pull && pull.state !== 'open') return refused('closed', `pull request #${pull.number} is ${pull.state}; only open pull requests run.`);
  const sha = pull ? pull.headSha : (head as { sha: string }).sha;
  if (request.expectedSha && request.expectedSha !== sha) {
    return refused('head_moved', `the head is now \`${sha.slice(0, 12)}\`, not \`${request.expectedSha.slice(0, 12)}\`; comment \`/run\` to run the new head.`);
  }

  // Round 2 (and 3 inside readManifest for a task-mgmt.yml): the definition and the people.
  const [read, people] = await Promise.all([
    readManifest(host, sha, deps.taskTypes, deps.defaultImage),
    pull ? rolesOfPeople(host, pull.author, reviews) : Promise.resolve(null),
  ]);
  if (!read.ok && 'errors' in read) return manifestFailed(deps, request, sha, read.errors);
  if (!read.ok) return refused('not_runnable', read.reason);
  const { manifest } = read;
  const tasks = selectTasks(manifest, request.task);
  if (tasks === null) {
    const known = manifest.tasks.map((task) => quote(task.name)).join(', ');
    return refused('not_found', `there is no task ${quote(request.task ?? '')} at \`${sha.slice(0, 12)}\`; the tasks are ${known}.`);
  }
  const params = paramsFor(tasks, request.task, request.params);
  if ('refused' in params) return refused('params', params.refused);
  const networked = tasks.find((task) => task.network && (task.type === 'container' || task.type === 'procfile'));
  if (networked) {
    return refused('not_runnable', `the task ${quote(networked.name)} asks for \`network: true\`, and containers get no network on this deployment.`);
  }
  const pinTtl = deps.pinTtl ?? defaultPinTtl;
  const tooLong = manifest.pinTtlMs !== undefined ? pinTtlProblem(manifest.pinTtlMs, pinTtl, `\`pin.ttl\` in ${quote(manifest.source)}`) : null;
  if (tooLong) return refused('not_runnable', tooLong);
  const beyondOrg = orgRefusal(org, {
    repo: request.repo,
    tasks,
    pinTtlMs: manifest.pinTtlMs,
    role: roleFromPermission(permission),
    actor: request.requester.login,
    manifestRole: manifest.permission,
    scheduled: request.trigger === 'schedule',
  });
  if (beyondOrg) return refused('org_policy', beyondOrg);
  if (request.trigger === 'schedule') {
    const named = tasks.find((task) => task.name === request.task);
    if (!named?.schedule?.length) return refused('not_found', `the task ${quote(request.task ?? '')} has no \`schedule:\` at \`${sha.slice(0, 12)}\` any more.`);
    const tooOften = request.scheduleIntervalMs !== undefined ? scheduleIntervalRefusal(org, named.name, request.scheduleIntervalMs) : null;
    if (tooOften) return refused('org_policy', tooOften);
  }
  const required = requiredRoleFor(org, tasks, manifest.permission).role;

  const pullRequest: PullRequestFacts | undefined =
    pull && people
      ? {
          number: pull.number,
          headSha: sha,
          author: pull.author,
          authorPermission: people.author,
          changedTaskFiles: changedTaskFiles(changed, read.taskPaths),
          reviews,
          reviewerPermissions: people.reviewers,
        }
      : undefined;
  const decision = authorize({ actor: request.requester.login, permission, required, ...(pullRequest ? { pullRequest } : {}) });
  if (!decision.allowed && decision.kind === 'role') return refused('role', decision.reason);
  if (!decision.allowed) return waitForApproval(deps, request, tasks, decision);
  return queueRuns(deps, request, { manifest, tasks, params, digest: read.digest, required, caps: orgCaps(org) }, sha, decision);
}

/** The pull request author's role and each approving reviewer's role, asked at once. */
async function rolesOfPeople(
  host: RepoHost,
  author: string,
  reviews: readonly ReviewInfo[],
): Promise<{ author: CollaboratorPermission; reviewers: Map<string, CollaboratorPermission> }> {
  const reviewers = [...new Set(latestApprovals(reviews).map((review) => review.reviewer))];
  const [authorPermission, ...reviewerPermissions] = await Promise.all([host.getPermission(author), ...reviewers.map((login) => host.getPermission(login))]);
  return { author: authorPermission!, reviewers: new Map(reviewers.map((login, i) => [login, reviewerPermissions[i]!])) };
}

/** `/run x k=v` sets x's parameters; `/run k=v` sets them on every task that declares them. */
function paramsFor(
  tasks: ResolvedTask[],
  named: string | null,
  given: Record<string, string>,
): Map<string, Record<string, string>> | { refused: string } {
  const result = new Map<string, Record<string, string>>();
  const used = new Set<string>();
  for (const task of tasks) {
    const declared = new Set(Object.keys(task.params).map((key) => key.toLowerCase()));
    const mine = named === null ? Object.fromEntries(Object.entries(given).filter(([key]) => declared.has(key.toLowerCase()))) : task.name === named ? given : {};
    for (const key of Object.keys(mine)) used.add(key.toLowerCase());
    const resolved = resolveParams(task, mine);
    if (!resolved.ok) return { refused: resolved.reason };
    result.set(task.name, resolved.params);
  }
  const unused = Object.keys(given).filter((key) => !used.has(key.toLowerCase()));
  if (named === null && unused.length > 0) return { refused: `no task declares the parameter ${quote(unused[0]!)}.` };
  return result;
}

async function manifestFailed(deps: Deps, request: RunRequest, sha: string, errors: ManifestError[]): Promise<RequestOutcome> {
  await deps.checks.create({ repo: request.repo, sha, task: 'manifest' }, manifestErrorReport(errors, sha));
  const first = errors[0]!;
  return refused(
    'manifest',
    `the task definition at \`${sha.slice(0, 12)}\` has ${errors.length === 1 ? 'an error' : `${errors.length} errors`}: ${quote(first.file)} line ${first.line}${first.field ? `, ${quote(first.field)}` : ''}: ${quote(first.message)}`,
  );
}

async function queueRuns(
  deps: Deps,
  request: RunRequest,
  plan: { manifest: LoadedManifest; tasks: ResolvedTask[]; params: Map<string, Record<string, string>>; digest: string; required: RequiredRole; caps: OrgCaps },
  sha: string,
  decision: Extract<Decision, { allowed: true }>,
): Promise<RequestOutcome> {
  const number = numberOf(request.target);
  const runs: Run[] = [];
  const runIds = new Map<string, string>();
  for (const task of plan.tasks) {
    const id = deps.newId();
    runIds.set(task.name, id);
    const draft = {
      id,
      repo: request.repo,
      number,
      isPullRequest: request.target.kind === 'pull_request',
      sha,
      task: task.name,
      taskType: task.type,
      dockerfile: task.dockerfile ?? '',
      spec: runSpec(task, plan.manifest, deps.pinTtl ?? defaultPinTtl, plan.caps),
      // Tasks come in `needs` order, so every needed task already has its run id.
      needs: task.needs.map((name) => runIds.get(name)!),
      params: plan.params.get(task.name) ?? {},
      requestedBy: request.requester.login,
      requesterKind: request.requester.kind,
      requiredRole: plan.required,
      trigger: request.trigger,
      commentId: request.commentId ?? null,
      approvals: decision.approvals,
      manifestDigest: plan.digest,
    };
    // The check run comes first: a worker may take the run the moment it is recorded.
    const checkRunId = await deps.checks.create(draft, queuedReport(draft));
    const run = await deps.store.createRun({ ...draft, checkRunId }, deps.now());
    await record(deps.store, deps.now(), {
      repo: request.repo,
      number,
      requester: request.requester,
      action: request.trigger === 'rerun' ? 'rerun' : 'run',
      allowed: true,
      reason: `${decision.reason}; pinned ${sha}`,
      runId: run.id,
    });
    try {
      await deps.queue.enqueue({ runId: run.id });
    } catch (error) {
      // Nothing reached the queue (its server is down): the run ends now and says why, rather than
      // waiting `queued` for a message that will never come; the requester is told by the caller.
      const ended = await deps.store.transition(run.id, 'skip', deps.now(), { error: `it could not be queued: ${errorMessage(error)}` });
      if (ended) await deps.checks.update(ended, finishedReport(ended, deps.gatewayUrl)).catch(() => undefined);
      throw error;
    }
    runs.push(run);
  }
  return { kind: 'queued', sha, runs };
}

function runSpec(task: ResolvedTask, manifest: LoadedManifest, pinTtl: PinTtlLimits, caps: OrgCaps): RunSpec {
  const typeParams =
    task.type === 'container'
      ? { dockerfile: task.dockerfile, context: task.context }
      : task.type === 'procfile'
        ? { procfile: task.procfile, process: task.process, image: task.image }
        : task.with;
  return {
    with: typeParams,
    network: task.network,
    ...(task.timeoutMs !== undefined ? { timeoutMs: task.timeoutMs } : {}),
    ...(task.resources?.cpus !== undefined ? { cpus: task.resources.cpus } : {}),
    ...(task.resources?.memory !== undefined ? { memoryBytes: task.resources.memory } : {}),
    ...(task.resources?.pids !== undefined ? { pids: task.resources.pids } : {}),
    // Decided now, with the run: the worker pins for what the request was granted.
    pinTtlMs: effectivePinTtl(manifest.pinTtlMs, caps.pinTtlMs !== undefined ? { defaultMs: Math.min(pinTtl.defaultMs, caps.pinTtlMs), maxMs: Math.min(pinTtl.maxMs, caps.pinTtlMs) } : pinTtl),
    // The org policy's bounds for what the task leaves to the deployment (README "Org policy").
    ...(orgSpec(caps) ?? {}),
  };
}

function orgSpec(caps: OrgCaps): Pick<RunSpec, 'caps' | 'concurrency' | 'registries'> | null {
  const bounds = {
    ...(caps.cpus !== undefined ? { cpus: caps.cpus } : {}),
    ...(caps.memoryBytes !== undefined ? { memoryBytes: caps.memoryBytes } : {}),
    ...(caps.pids !== undefined ? { pids: caps.pids } : {}),
    ...(caps.timeoutMs !== undefined ? { timeoutMs: caps.timeoutMs } : {}),
    ...(caps.outputBytes !== undefined ? { outputBytes: caps.outputBytes } : {}),
  };
  const spec = {
    ...(Object.keys(bounds).length > 0 ? { caps: bounds } : {}),
    ...(caps.concurrency !== undefined ? { concurrency: caps.concurrency } : {}),
    ...(caps.registries !== undefined ? { registries: caps.registries } : {}),
  };
  return Object.keys(spec).length > 0 ? spec : null;
}

async function waitForApproval(
  deps: Deps,
  request: RunRequest,
  tasks: ResolvedTask[],
  decision: Extract<Decision, { kind: 'approval' }>,
): Promise<RequestOutcome> {
  const number = numberOf(request.target);
  await record(deps.store, deps.now(), { repo: request.repo, number, requester: request.requester, action: 'run', allowed: false, reason: decision.reason });
  for (const task of tasks) {
    const checkRunId = await deps.checks.create({ repo: request.repo, sha: decision.headSha, task: task.name }, approvalNeededReport(decision.reason, decision.headSha));
    await deps.store.recordApprovalWait({
      repo: fullName(request.repo),
      installationId: request.repo.installationId,
      number: number!,
      sha: decision.headSha,
      task: task.name,
      checkRunId,
      requestedBy: request.requester.login,
      createdAt: deps.now(),
    });
  }
  return { kind: 'waiting', sha: decision.headSha, reason: decision.reason };
}
