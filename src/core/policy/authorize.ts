/**
 * The authorization decision for one request to run, as a pure function of what GitHub told us
 * (README "Security model"). Callers fetch the facts; this decides and explains. Every
 * refusal says exactly what is missing, and `kind` tells the caller how to show it: a `role`
 * refusal is a reply, an `approval` refusal is a check run completed `action_required`.
 *
 * Layers: an org policy (planned) sets outer bounds; the repository's manifest can only tighten
 * them (`required`); this function applies whatever bound it is given.
 */
import { evaluateApprovals, type ReviewFact } from './review-gate.js';
import { roleAtLeast, roleFromPermission, type RequiredRole, type Role } from './roles.js';
import type { CollaboratorPermission } from '../../ports/repo-host.js';
import { quote } from '../text/quote.js';
import type { Approval } from '../runs/run.js';

export interface PullRequestFacts {
  number: number;
  headSha: string;
  author: string;
  authorPermission: CollaboratorPermission;
  /** Changed files that define the task (manifest, Dockerfile/Procfile, files they name, `review:` paths). */
  changedTaskFiles: readonly string[];
  reviews: readonly ReviewFact[];
  reviewerPermissions: ReadonlyMap<string, CollaboratorPermission>;
}

export interface AuthorizeInput {
  actor: string;
  /** The actor's permission on the repository, as GitHub reported it now. */
  permission: CollaboratorPermission;
  /** Least role the task's manifest asks for (default write). */
  required?: RequiredRole;
  /** Absent for a run of the default branch (an issue comment): its content was already reviewed. */
  pullRequest?: PullRequestFacts;
  /** What is asked, for the wording of a refusal (default `run`). */
  action?: 'run' | 'cancel' | 'pin';
}

const doing = { run: 'running tasks', cancel: 'cancelling runs', pin: 'keeping outputs pinned' } as const;

export type Decision =
  | { allowed: true; role: Role; reason: string; approvals: Approval[] }
  | { allowed: false; kind: 'role'; role: Role; reason: string }
  | { allowed: false; kind: 'approval'; role: Role; reason: string; headSha: string; mayApprove: string };

export function authorize(input: AuthorizeInput): Decision {
  const required = input.required ?? 'write';
  const role = roleFromPermission(input.permission);
  if (!roleAtLeast(role, required)) {
    return {
      allowed: false,
      kind: 'role',
      role,
      reason: `@${input.actor} has the ${role} role on this repository; ${doing[input.action ?? 'run']} needs ${required} or higher.`,
    };
  }
  const pull = input.pullRequest;
  const roleReason = `@${input.actor} has the ${role} role (${required} or higher is needed)`;
  if (!pull) return { allowed: true, role, reason: `${roleReason}; the default branch was already reviewed`, approvals: [] };

  const authorRole = roleFromPermission(pull.authorPermission);
  const outsider = !roleAtLeast(authorRole, 'write');
  const changesTask = pull.changedTaskFiles.length > 0;
  if (!outsider && !changesTask) {
    return { allowed: true, role, reason: `${roleReason}; the author @${pull.author} has write access and the task is unchanged`, approvals: [] };
  }

  const verdict = evaluateApprovals({
    reviews: pull.reviews,
    headSha: pull.headSha,
    reviewerPermissions: pull.reviewerPermissions,
    excluded: changesTask ? pull.author : undefined,
  });
  // Only approvals of the head count (review-gate.ts), so the commit each approved is the head.
  const approvals = verdict.approvals.map((review): Approval => ({ reviewId: review.id, reviewer: review.reviewer, commit: pull.headSha }));
  const why = [
    outsider ? `its author @${pull.author} has the ${authorRole} role (below write)` : null,
    changesTask ? `it changes the task (${listFiles(pull.changedTaskFiles)})` : null,
  ]
    .filter(Boolean)
    .join(' and ');
  if (verdict.approvals.length > 0) {
    const by = verdict.approvals.map((review) => `@${review.reviewer}`).join(', ');
    return { allowed: true, role, reason: `${roleReason}; ${why}, and ${by} approved \`${pull.headSha}\``, approvals };
  }
  const mayApprove = changesTask ? `someone with write access other than @${pull.author}` : 'someone with write access';
  const notCounted = verdict.rejected.length > 0 ? ` Not counted: ${verdict.rejected.map((r) => r.why).join('; ')}.` : '';
  return {
    allowed: false,
    kind: 'approval',
    role,
    headSha: pull.headSha,
    mayApprove,
    reason:
      `pull request #${pull.number} needs an approving review first, because ${why}. ` +
      `It must be an approval by ${mayApprove} of the head commit \`${pull.headSha}\`; then comment \`/run\` again.${notCounted}`,
  };
}

function listFiles(files: readonly string[]): string {
  // File names are the pull request author's to choose.
  const shown = files.slice(0, 5).map((file) => quote(file));
  return files.length > 5 ? `${shown.join(', ')} and ${files.length - 5} more` : shown.join(', ');
}
