import { describe, expect, it } from 'vitest';
import { authorize, type AuthorizeInput, type PullRequestFacts } from './authorize.js';
import type { ReviewFact } from './review-gate.js';
import type { CollaboratorPermission } from '../../ports/repo-host.js';

const head = 'h'.repeat(40);
const old = 'o'.repeat(40);

const perm = (role: 'admin' | 'maintain' | 'write' | 'triage' | 'read' | 'none'): CollaboratorPermission => ({
  permission: { admin: 'admin', maintain: 'write', write: 'write', triage: 'read', read: 'read', none: 'none' }[role],
  roleName: role,
  flags: {
    admin: role === 'admin',
    maintain: ['admin', 'maintain'].includes(role),
    push: ['admin', 'maintain', 'write'].includes(role),
    triage: ['admin', 'maintain', 'write', 'triage'].includes(role),
    pull: role !== 'none',
  },
});

let nextId = 1;
const review = (reviewer: string, state: string, commitId: string | null = head): ReviewFact => ({ id: nextId++, reviewer, state, commitId });

function pr(overrides: Partial<PullRequestFacts> & { roles?: Record<string, Parameters<typeof perm>[0]> } = {}): PullRequestFacts {
  const { roles = {}, ...rest } = overrides;
  return {
    number: 7,
    headSha: head,
    author: 'author',
    authorPermission: perm('write'),
    changedTaskFiles: [],
    reviews: [],
    reviewerPermissions: new Map(Object.entries(roles).map(([login, role]) => [login, perm(role)])),
    ...rest,
  };
}

function decide(input: Partial<AuthorizeInput> & { pullRequest?: PullRequestFacts }) {
  return authorize({ actor: 'actor', permission: perm('write'), ...input });
}

describe('authorize: the commenter\'s role', () => {
  it.each([
    ['admin', true],
    ['maintain', true],
    ['write', true],
    ['triage', false],
    ['read', false],
    ['none', false],
  ] as const)('%s may run: %s', (role, allowed) => {
    const decision = decide({ permission: perm(role) });
    expect(decision.allowed).toBe(allowed);
    if (!decision.allowed) {
      expect(decision.kind).toBe('role');
      expect(decision.reason).toContain(`has the ${role} role`);
      expect(decision.reason).toContain('needs write or higher');
    }
  });

  it.each([
    ['write', 'maintain', false],
    ['maintain', 'maintain', true],
    ['maintain', 'admin', false],
    ['admin', 'admin', true],
  ] as const)('%s with the manifest asking for %s may run: %s', (role, required, allowed) => {
    expect(decide({ permission: perm(role), required }).allowed).toBe(allowed);
  });

  it('never trusts a custom role\'s name', () => {
    const custom: CollaboratorPermission = { permission: 'read', roleName: 'admin', flags: { pull: true } };
    expect(decide({ permission: custom }).allowed).toBe(false);
  });

  it('an issue runs the default branch: no review gate', () => {
    expect(decide({})).toMatchObject({ allowed: true, approvals: [] });
  });
});

describe('authorize: pull requests', () => {
  it('a pull request by a writer that leaves the task alone needs no review', () => {
    expect(decide({ pullRequest: pr() })).toMatchObject({ allowed: true, approvals: [] });
  });

  it('an outsider\'s pull request is refused until approved, saying who may approve which SHA', () => {
    const decision = decide({ pullRequest: pr({ authorPermission: perm('read') }) });
    expect(decision).toMatchObject({ allowed: false, kind: 'approval', headSha: head, mayApprove: 'someone with write access' });
    expect(!decision.allowed && decision.reason).toContain('its author @author has the read role');
    expect(!decision.allowed && decision.reason).toContain(head);
  });

  it('an outsider\'s pull request runs after a writer approves the head', () => {
    const approval = review('maintainer', 'APPROVED');
    const decision = decide({ pullRequest: pr({ authorPermission: perm('none'), reviews: [approval], roles: { maintainer: 'maintain' } }) });
    expect(decision).toMatchObject({ allowed: true, approvals: [{ reviewId: approval.id, reviewer: approval.reviewer, commit: head }] });
  });

  it('an approval of an older commit is stale', () => {
    const decision = decide({ pullRequest: pr({ authorPermission: perm('read'), reviews: [review('maintainer', 'APPROVED', old)], roles: { maintainer: 'maintain' } }) });
    expect(decision.allowed).toBe(false);
    expect(!decision.allowed && decision.reason).toContain(`@maintainer approved \`${old.slice(0, 12)}\`, not the head`);
  });

  it('an approval whose commit is gone does not count', () => {
    const decision = decide({ pullRequest: pr({ authorPermission: perm('read'), reviews: [review('maintainer', 'APPROVED', null)], roles: { maintainer: 'write' } }) });
    expect(decision.allowed).toBe(false);
  });

  it('an approval by a reader does not count', () => {
    const decision = decide({ pullRequest: pr({ authorPermission: perm('read'), reviews: [review('reader', 'APPROVED')], roles: { reader: 'read' } }) });
    expect(decision.allowed).toBe(false);
    expect(!decision.allowed && decision.reason).toContain('@reader does not have write access');
  });

  it('an approval by someone who lost write access since does not count', () => {
    const decision = decide({ pullRequest: pr({ authorPermission: perm('read'), reviews: [review('former', 'APPROVED')], roles: { former: 'triage' } }) });
    expect(decision.allowed).toBe(false);
  });

  it.each(['CHANGES_REQUESTED', 'DISMISSED'])('a later %s by the same reviewer withdraws the approval', (state) => {
    const reviews = [review('maintainer', 'APPROVED'), review('maintainer', state)];
    expect(decide({ pullRequest: pr({ authorPermission: perm('read'), reviews, roles: { maintainer: 'maintain' } }) }).allowed).toBe(false);
  });

  it('a later comment-only review keeps the approval', () => {
    const reviews = [review('maintainer', 'APPROVED'), review('maintainer', 'COMMENTED'), review('maintainer', 'PENDING')];
    expect(decide({ pullRequest: pr({ authorPermission: perm('read'), reviews, roles: { maintainer: 'maintain' } }) }).allowed).toBe(true);
  });

  it('an approval after changes were requested counts', () => {
    const reviews = [review('maintainer', 'CHANGES_REQUESTED'), review('maintainer', 'APPROVED')];
    expect(decide({ pullRequest: pr({ authorPermission: perm('read'), reviews, roles: { maintainer: 'maintain' } }) }).allowed).toBe(true);
  });

  it('changes requested by one reviewer do not cancel another\'s approval', () => {
    const reviews = [review('a', 'APPROVED'), review('b', 'CHANGES_REQUESTED')];
    expect(decide({ pullRequest: pr({ authorPermission: perm('read'), reviews, roles: { a: 'write', b: 'write' } }) }).allowed).toBe(true);
  });

  it('a pull request that changes the task needs an approval even from a maintainer author', () => {
    const decision = decide({ pullRequest: pr({ authorPermission: perm('admin'), changedTaskFiles: ['Dockerfile'] }) });
    expect(decision).toMatchObject({ allowed: false, kind: 'approval', mayApprove: 'someone with write access other than @author' });
    expect(!decision.allowed && decision.reason).toContain('it changes the task (`Dockerfile`)');
  });

  it('the author\'s own approval of a task change is not counted', () => {
    const decision = decide({ pullRequest: pr({ changedTaskFiles: ['Dockerfile'], reviews: [review('author', 'APPROVED')], roles: { author: 'admin' } }) });
    expect(decision.allowed).toBe(false);
    expect(!decision.allowed && decision.reason).toContain('@author wrote the pull request and cannot approve its own task change');
  });

  it('a task change approved by another writer at the head runs, recording the approval', () => {
    const approval = review('other', 'APPROVED');
    const decision = decide({ pullRequest: pr({ changedTaskFiles: ['Dockerfile', 'scripts/run.sh'], reviews: [review('author', 'APPROVED'), approval], roles: { author: 'admin', other: 'write' } }) });
    expect(decision).toMatchObject({ allowed: true, approvals: [{ reviewId: approval.id, reviewer: approval.reviewer, commit: head }] });
  });

  it('the role check comes first: a reader cannot run even an approved pull request', () => {
    const decision = decide({ permission: perm('read'), pullRequest: pr({ reviews: [review('m', 'APPROVED')], roles: { m: 'admin' } }) });
    expect(decision).toMatchObject({ allowed: false, kind: 'role' });
  });
});
