/**
 * Asking for a run, whatever the door (comment, re-run button, retry): gather the facts from
 * GitHub, decide with the policy, then either record and queue the runs, or explain what is
 * missing. Nothing is queued for a refused request, and every decision is audited.
 */
import { authorize, type Decision, type PullRequestFacts } from '../policy/authorize.js';
import { latestApprovals } from '../policy/review-gate.js';
import { resolveParams, selectTasks, type LoadedManifest, type ManifestError, type ResolvedTask } from '../manifest/load-manifest.js';
import { readManifest } from '../manifest/read-manifest.js';
import { changedTaskFiles } from '../manifest/task-files.js';
import type { CollaboratorPermission } from '../../ports/repo-host.js';
import { approvalNeededReport, manifestErrorReport, queuedReport } from './check-text.js';
import { fullName, type CommandDeps } from './command-deps.js';
import type { RepoRef, Run, RunSpec, Trigger } from './run.js';

export interface RunRequest {
  repo: RepoRef;
  /** Pull request or issue the request belongs to (0 for an API request of the default branch). */
  number: number;
  isPullRequest: boolean;
  actor: string;
  /** null: every task. */
  task: string | null;
  params: Record<string, string>;
  trigger: Trigger;
  commentId: number | null;
  /** The SHA the requester saw (a re-run button, /retry): refused if the head moved since. */
  expectedSha?: string;
  /**
   * `service`: a caller holding one of the deployment's API tokens. The token grants the role
   * (admin); the pull-request review gate still applies as for anyone.
   */
  actorKind?: 'user' | 'service';
}

/** What a service token is worth: the operator's trust, as the admin role. */
const serviceTokenPermission: CollaboratorPermission = {
  permission: 'admin',
  roleName: 'service token',
  flags: { admin: true, maintain: true, push: true, triage: true, pull: true },
};

export type RequestOutcome =
  | { kind: 'queued'; runs: Run[] }
  | { kind: 'refused'; reason: string }
  | { kind: 'waiting'; reason: string; sha: string };

const rateLimitedActions = ['run', 'retry', 'rerun', 'cancel'];

export async function requestRun(deps: CommandDeps, request: RunRequest): Promise<RequestOutcome> {
  const limited = await rateLimit(deps, request.actor, request.trigger === 'rerun' ? 'rerun' : 'run');
  if (limited) return refuse(deps, request, limited);

  const permission = request.actorKind === 'service' ? serviceTokenPermission : await deps.host.getPermission(request.actor);
  const early = authorize({ actor: request.actor, permission });
  if (!early.allowed) return refuse(deps, request, early.reason);

  const target = request.isPullRequest ? await pullRequestHead(deps, request.number) : await defaultBranchHead(deps);
  if ('refused' in target) return refuse(deps, request, target.refused);
  const sha = target.sha;
  if (request.expectedSha && request.expectedSha !== sha) {
    return refuse(
      deps,
      request,
      `the head is now \`${sha.slice(0, 12)}\`, not \`${request.expectedSha.slice(0, 12)}\`; comment \`/run\` to run the new head.`,
    );
  }

  const read = await readManifest(deps.host, sha, deps.taskTypes, deps.defaultImage);
  if (!read.ok && 'errors' in read) return manifestFailed(deps, request, sha, read.errors);
  if (!read.ok) return refuse(deps, request, read.reason);
  const { manifest } = read;
  const tasks = selectTasks(manifest, request.task);
  if (tasks === null) {
    const known = manifest.tasks.map((task) => `\`${task.name}\``).join(', ');
    return refuse(deps, request, `there is no task \`${request.task}\` at \`${sha.slice(0, 12)}\`; the tasks are ${known}.`);
  }
  const params = paramsFor(tasks, request.task, request.params);
  if ('refused' in params) return refuse(deps, request, params.refused);
  const networked = tasks.find((task) => task.network && (task.type === 'container' || task.type === 'procfile'));
  if (networked) {
    return refuse(deps, request, `the task \`${networked.name}\` asks for \`network: true\`, and containers get no network on this deployment.`);
  }

  const pullRequest = target.author !== null ? await pullRequestFacts(deps, request.number, sha, target.author, read.taskPaths) : undefined;
  const decision = authorize({ actor: request.actor, permission, required: manifest.permission, ...(pullRequest ? { pullRequest } : {}) });
  if (!decision.allowed && decision.kind === 'role') return refuse(deps, request, decision.reason);
  if (!decision.allowed) return waitForApproval(deps, request, tasks, decision);
  return queueRuns(deps, request, { manifest, tasks, params, digest: read.digest }, sha, decision);
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
  if (named === null && unused.length > 0) return { refused: `no task declares the parameter \`${unused[0]}\`.` };
  return result;
}

async function manifestFailed(deps: CommandDeps, request: RunRequest, sha: string, errors: ManifestError[]): Promise<RequestOutcome> {
  await deps.checks.create({ repo: request.repo, sha, task: 'manifest' }, manifestErrorReport(errors, sha));
  const first = errors[0]!;
  return refuse(
    deps,
    request,
    `the task definition at \`${sha.slice(0, 12)}\` has ${errors.length === 1 ? 'an error' : `${errors.length} errors`}: \`${first.file}\` line ${first.line}${first.field ? `, \`${first.field}\`` : ''}: ${first.message}`,
  );
}

async function queueRuns(
  deps: CommandDeps,
  request: RunRequest,
  plan: { manifest: LoadedManifest; tasks: ResolvedTask[]; params: Map<string, Record<string, string>>; digest: string },
  sha: string,
  decision: Extract<Decision, { allowed: true }>,
): Promise<RequestOutcome> {
  const runs: Run[] = [];
  const runIds = new Map<string, string>();
  for (const task of plan.tasks) {
    const id = deps.newId();
    runIds.set(task.name, id);
    const draft = {
      id,
      repo: request.repo,
      number: request.number,
      isPullRequest: request.isPullRequest,
      sha,
      task: task.name,
      taskType: task.type,
      dockerfile: task.dockerfile ?? '',
      spec: runSpec(task, plan.manifest),
      // Tasks come in `needs` order, so every needed task already has its run id.
      needs: task.needs.map((name) => runIds.get(name)!),
      params: plan.params.get(task.name) ?? {},
      requestedBy: request.actor,
      trigger: request.trigger,
      commentId: request.commentId,
      approvals: decision.approvals,
      manifestDigest: plan.digest,
    };
    // The check run comes first: a worker may take the run the moment it is recorded.
    const checkRunId = await deps.checks.create(draft, queuedReport(draft));
    const run = await deps.store.createRun({ ...draft, checkRunId }, deps.now());
    await audit(deps, request, true, `${decision.reason}; pinned ${sha}`, run.id);
    await deps.queue.enqueue({ runId: run.id });
    runs.push(run);
  }
  // The check run is the main acknowledgement; the reaction tells the commenter it was heard.
  if (request.commentId !== null) await react(deps, request.commentId, 'rocket');
  return { kind: 'queued', runs };
}

function runSpec(task: ResolvedTask, manifest: LoadedManifest): RunSpec {
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
    ...(manifest.pinTtlMs !== undefined ? { pinTtlMs: manifest.pinTtlMs } : {}),
  };
}

async function waitForApproval(
  deps: CommandDeps,
  request: RunRequest,
  tasks: ResolvedTask[],
  decision: Extract<Decision, { kind: 'approval' }>,
): Promise<RequestOutcome> {
  await audit(deps, request, false, decision.reason, null);
  for (const task of tasks) {
    const checkRunId = await deps.checks.create({ repo: request.repo, sha: decision.headSha, task: task.name }, approvalNeededReport(decision.reason, decision.headSha));
    await deps.store.recordApprovalWait({
      repo: fullName(request.repo),
      installationId: request.repo.installationId,
      number: request.number,
      sha: decision.headSha,
      task: task.name,
      checkRunId,
      requestedBy: request.actor,
      createdAt: deps.now(),
    });
  }
  await deps.host.reply(request.number, `@${request.actor} nothing was run yet: ${decision.reason}`);
  if (request.commentId !== null) await react(deps, request.commentId, 'eyes');
  return { kind: 'waiting', reason: decision.reason, sha: decision.headSha };
}

async function pullRequestFacts(
  deps: CommandDeps,
  number: number,
  headSha: string,
  author: string,
  taskPaths: string[],
): Promise<PullRequestFacts> {
  const [authorPermission, changed, reviews] = await Promise.all([
    deps.host.getPermission(author),
    deps.host.listChangedFiles(number),
    deps.host.listReviews(number),
  ]);
  const reviewerPermissions = new Map<string, CollaboratorPermission>();
  for (const review of latestApprovals(reviews)) {
    if (!reviewerPermissions.has(review.reviewer)) reviewerPermissions.set(review.reviewer, await deps.host.getPermission(review.reviewer));
  }
  return {
    number,
    headSha,
    author,
    authorPermission,
    changedTaskFiles: changedTaskFiles(changed, [], taskPaths),
    reviews,
    reviewerPermissions,
  };
}

async function pullRequestHead(deps: CommandDeps, number: number): Promise<{ sha: string; author: string } | { refused: string }> {
  // The issue_comment payload carries no head SHA: the API's answer is the commit we pin.
  const pull = await deps.host.getPullRequest(number);
  if (pull.state !== 'open') return { refused: `pull request #${number} is ${pull.state}; only open pull requests run.` };
  return { sha: pull.headSha, author: pull.author };
}

async function defaultBranchHead(deps: CommandDeps): Promise<{ sha: string; author: null }> {
  const head = await deps.host.getDefaultBranchHead();
  return { sha: head.sha, author: null };
}

async function rateLimit(deps: CommandDeps, actor: string, action: string): Promise<string | null> {
  const limit = deps.limits.commandsPerMinute;
  const recent = await deps.store.countAudit({ actor, actions: rateLimitedActions, since: new Date(deps.now().getTime() - 60_000) });
  if (recent < limit) return null;
  return `@${actor} gave ${recent} commands in the last minute, and the limit is ${limit}; wait a minute before the next \`/${action === 'rerun' ? 'run' : action}\`.`;
}

export async function refuse(deps: CommandDeps, request: Pick<RunRequest, 'repo' | 'number' | 'actor' | 'trigger' | 'commentId'>, reason: string, action?: string): Promise<{ kind: 'refused'; reason: string }> {
  await audit(deps, request, false, reason, null, action);
  await deps.host.reply(request.number, `@${request.actor} nothing was run: ${reason}`);
  if (request.commentId !== null) await react(deps, request.commentId, 'confused');
  return { kind: 'refused', reason };
}

export async function audit(
  deps: CommandDeps,
  request: Pick<RunRequest, 'repo' | 'number' | 'actor' | 'trigger'>,
  allowed: boolean,
  reason: string,
  runId: string | null,
  action?: string,
): Promise<void> {
  await deps.store.audit({
    at: deps.now(),
    repo: fullName(request.repo),
    number: request.number,
    actor: request.actor,
    action: action ?? (request.trigger === 'rerun' ? 'rerun' : 'run'),
    allowed,
    reason,
    runId,
  });
}

export async function react(deps: CommandDeps, commentId: number, content: '+1' | 'rocket' | 'eyes' | 'confused'): Promise<void> {
  await deps.host.react(commentId, content).catch((error: unknown) => deps.log.warn({ err: error }, 'could not react to the comment'));
}
