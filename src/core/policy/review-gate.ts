/**
 * Which approving reviews count, as a pure function of the reviews GitHub lists.
 *
 * GitHub accepts an approval made on an older commit, and a repository's branch protection may
 * not dismiss stale approvals, so we compare each review's `commit_id` with the head we will run
 * ourselves. Only a reviewer's latest state-bearing review counts: a later CHANGES_REQUESTED or
 * DISMISSED withdraws an earlier approval (COMMENTED and PENDING change nothing, as on GitHub).
 * https://docs.github.com/en/rest/pulls/reviews#list-reviews-for-a-pull-request
 */
import { roleAtLeast, roleFromPermission } from './roles.js';
import type { CollaboratorPermission } from '../../ports/repo-host.js';

export interface ReviewFact {
  id: number;
  reviewer: string;
  /** GitHub's review state, upper-case: APPROVED, CHANGES_REQUESTED, COMMENTED, DISMISSED, PENDING. */
  state: string;
  /** The commit the review was made on; null when that commit is gone. */
  commitId: string | null;
}

export interface ApprovalQuery {
  /** Reviews in GitHub's (chronological) order. */
  reviews: readonly ReviewFact[];
  headSha: string;
  /** Current permission of each reviewer whose latest review is an approval. */
  reviewerPermissions: ReadonlyMap<string, CollaboratorPermission>;
  /** A reviewer who may not approve (the pull request's author, when the task itself changed). */
  excluded?: string | undefined;
}

export interface ApprovalVerdict {
  /** Reviews that satisfy the gate. */
  approvals: ReviewFact[];
  /** Why each other approval did not count, for the refusal message. */
  rejected: { review: ReviewFact; why: string }[];
}

/** Reviewers whose latest state-bearing review is an approval: their permission must be looked up. */
export function latestApprovals(reviews: readonly ReviewFact[]): ReviewFact[] {
  const latest = new Map<string, ReviewFact>();
  for (const review of reviews) {
    const state = review.state.toUpperCase();
    if (state === 'APPROVED' || state === 'CHANGES_REQUESTED' || state === 'DISMISSED') latest.set(review.reviewer.toLowerCase(), review);
  }
  return [...latest.values()].filter((review) => review.state.toUpperCase() === 'APPROVED');
}

export function evaluateApprovals(query: ApprovalQuery): ApprovalVerdict {
  const verdict: ApprovalVerdict = { approvals: [], rejected: [] };
  for (const review of latestApprovals(query.reviews)) {
    const permission = query.reviewerPermissions.get(review.reviewer);
    if (review.commitId !== query.headSha) {
      verdict.rejected.push({ review, why: `@${review.reviewer} approved ${review.commitId ? `\`${review.commitId.slice(0, 12)}\`` : 'a commit that is gone'}, not the head` });
    } else if (query.excluded && review.reviewer.toLowerCase() === query.excluded.toLowerCase()) {
      verdict.rejected.push({ review, why: `@${review.reviewer} wrote the pull request and cannot approve its own task change` });
    } else if (!permission || !roleAtLeast(roleFromPermission(permission), 'write')) {
      verdict.rejected.push({ review, why: `@${review.reviewer} does not have write access` });
    } else {
      verdict.approvals.push(review);
    }
  }
  return verdict;
}
