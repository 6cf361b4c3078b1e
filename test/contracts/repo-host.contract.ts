/**
 * What every RepoHost adapter must answer (src/ports/repo-host.ts): the repository's visibility,
 * who has which role, a pull request's head and author, the default branch's head, the root and
 * files of a commit, a pull request's reviews (oldest first, state upper-case, with the commit each
 * was on) and the paths it changes (both sides of a rename).
 *
 * Each adapter brings a repository whose default branch holds `baseTree`, and the means to set
 * roles and open pull requests where it has them. A local folder has neither: its person at the
 * keyboard is the admin and it has no pull requests, so it passes `roles: null` and
 * `pullRequests: null`, and the suite checks that it says so instead of inventing answers.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { roleFromPermission } from '../../src/core/policy/roles.js';
import type { RepoHost, RepoPermission, RepoVisibility } from '../../src/ports/repo-host.js';

/** The files of the default branch's head in every adapter's repository. */
export const baseTree: Record<string, string> = {
  Dockerfile: 'FROM busybox\nCOPY . /src\n',
  'task-mgmt.yml': 'tasks:\n  snapshot:\n    dockerfile: Dockerfile\n',
  'README.md': '# Archive\n\nGrüße ✓\n',
  'copy-of-readme.md': '# Archive\n\nGrüße ✓\n',
  'docs/guide.md': 'How to archive.\n',
  'docs/old-name.md': 'This file is renamed by the pull request, its content unchanged.\n',
  'docs/removed.md': 'The pull request deletes this file.\n',
  'src/deep/task.sh': '#!/bin/sh\necho archived\n',
};

export type ReviewState = 'APPROVED' | 'CHANGES_REQUESTED' | 'COMMENTED' | 'DISMISSED';

export interface PullRequestFixture {
  /**
   * Opens a pull request by `author` whose head commit is the default branch's head with
   * `changes` applied (path → new text, null deletes) and each `[from, to]` of `renames` moved.
   */
  open(options: { author: string; changes: Record<string, string | null>; renames?: [string, string][] }): Promise<{ number: number; headSha: string }>;
  /** Pushes a commit of `changes` to the pull request's branch; returns the new head SHA. */
  push(number: number, changes: Record<string, string | null>): Promise<string>;
  /** Submits a review on `commitId` (the head when not given); returns the review's id. */
  review(number: number, reviewer: string, state: ReviewState, commitId?: string): Promise<number>;
}

export interface OpenedRepoHost {
  host: RepoHost;
  /** The default branch's name and its head, whose tree is `baseTree`. */
  head: { branch: string; sha: string };
  /** What the adapter's repository is: who may see it. */
  visibility: RepoVisibility;
  /**
   * Gives a login a role in the repository; `null` makes the login a user the host knows who has
   * no role here. Null as a whole when the adapter has no roles (everyone is admin).
   */
  setRole: ((login: string, role: RepoPermission | null) => Promise<void>) | null;
  pullRequests: PullRequestFixture | null;
  cleanup(): Promise<void>;
}

const hex40 = /^[0-9a-f]{40}$/;

export function repoHostContract(name: string, open: () => Promise<OpenedRepoHost>, options: { roles: boolean; pullRequests: boolean }): void {
  const without = [options.roles ? '' : 'no roles: everyone is admin', options.pullRequests ? '' : 'no pull requests'].filter(Boolean);
  describe(`RepoHost contract: ${name}${without.length > 0 ? ` (${without.join('; ')})` : ''}`, () => {
    let opened: OpenedRepoHost;
    let host: RepoHost;

    beforeEach(async () => {
      opened = await open();
      expect(opened.setRole !== null, 'setRole matches the declared capability').toBe(options.roles);
      expect(opened.pullRequests !== null, 'pullRequests matches the declared capability').toBe(options.pullRequests);
      ({ host } = opened);
    });

    afterEach(async () => {
      await opened.cleanup();
    });

    describe('the default branch and the files of a commit', () => {
      it('gives the default branch’s name and head, also when the caller names the branch', async () => {
        expect(opened.head.sha).toMatch(hex40);
        expect(await host.getDefaultBranchHead()).toStrictEqual(opened.head);
        expect(await host.getDefaultBranchHead(opened.head.branch)).toStrictEqual(opened.head);
      });

      it('lists the root of a commit: its files and folders, each with a digest of its content', async () => {
        const root = await host.listRoot(opened.head.sha);
        const byName = new Map(root.map((entry) => [entry.name, entry]));
        expect([...byName.keys()].sort()).toStrictEqual(['Dockerfile', 'README.md', 'copy-of-readme.md', 'docs', 'src', 'task-mgmt.yml']);
        for (const file of ['Dockerfile', 'README.md', 'copy-of-readme.md', 'task-mgmt.yml']) expect(byName.get(file)).toMatchObject({ type: 'file', sha: expect.stringMatching(hex40) });
        for (const folder of ['docs', 'src']) expect(byName.get(folder)?.type).toBe('dir');
        // The digest is of the content: equal files share it, different files do not.
        expect(byName.get('copy-of-readme.md')!.sha).toBe(byName.get('README.md')!.sha);
        expect(byName.get('Dockerfile')!.sha).not.toBe(byName.get('README.md')!.sha);
      });

      it('reads a file’s text at a commit, at the root and in folders', async () => {
        expect(await host.readFile('README.md', opened.head.sha)).toBe(baseTree['README.md']);
        expect(await host.readFile('src/deep/task.sh', opened.head.sha)).toBe(baseTree['src/deep/task.sh']);
      });

      it('answers null for a file that is not there, and for a folder', async () => {
        expect(await host.readFile('missing.yml', opened.head.sha)).toBeNull();
        expect(await host.readFile('docs/missing.md', opened.head.sha)).toBeNull();
        expect(await host.readFile('no/such/folder/file', opened.head.sha)).toBeNull();
        expect(await host.readFile('docs', opened.head.sha)).toBeNull();
        expect(await host.readFile('src/deep', opened.head.sha)).toBeNull();
      });
    });

    describe('visibility', () => {
      it('says who may see the repository', async () => {
        expect(await host.getVisibility()).toBe(opened.visibility);
      });
    });

    describe('roles', () => {
      if (!options.roles) {
        it('treats everyone as admin', async () => {
          for (const login of ['mona', 'someone-else']) expect(roleFromPermission(await host.getPermission(login))).toBe('admin');
        });
        return;
      }

      // GitHub's legacy `permission` folds maintain into write and triage into read; the flags tell them apart.
      // https://docs.github.com/en/rest/collaborators/collaborators#get-repository-permissions-for-a-user
      it.each([
        ['admin', 'admin', { admin: true }],
        ['maintain', 'write', { admin: false, maintain: true, push: true }],
        ['write', 'write', { maintain: false, push: true }],
        ['triage', 'read', { push: false, triage: true }],
        ['read', 'read', { push: false, triage: false, pull: true }],
      ] as const)('reports %s as GitHub does: permission %s, with the flags that tell', async (role, permission, flags) => {
        const login = `user-${role}`;
        await opened.setRole!(login, role);
        const answer = await host.getPermission(login);
        expect(answer).toMatchObject({ permission, flags: expect.objectContaining(flags) });
        expect(roleFromPermission(answer)).toBe(role);
      });

      it('gives none to a user with no role in the repository', async () => {
        await opened.setRole!('outsider', null);
        const answer = await host.getPermission('outsider');
        expect(answer.permission).toBe('none');
        expect(roleFromPermission(answer)).toBe('none');
      });

      it('gives none to a login the host has never seen (a deleted account)', async () => {
        const answer = await host.getPermission(`never-seen-${Date.now()}`);
        expect(roleFromPermission(answer)).toBe('none');
      });
    });

    describe('pull requests', () => {
      if (!options.pullRequests) {
        it('has none: asking for one fails instead of inventing it', async () => {
          await expect(host.getPullRequest(1)).rejects.toThrow();
        });
        return;
      }

      let pulls: PullRequestFixture;
      beforeEach(() => {
        pulls = opened.pullRequests!;
      });

      it('gives a pull request’s number, author, state and current head', async () => {
        const { number, headSha } = await pulls.open({ author: 'contributor', changes: { 'README.md': '# Archive, edited\n' } });
        expect(headSha).toMatch(hex40);
        expect(headSha).not.toBe(opened.head.sha);
        expect(await host.getPullRequest(number)).toStrictEqual({ number, headSha, author: 'contributor', state: 'open' });

        const pushed = await pulls.push(number, { 'README.md': '# Archive, edited again\n' });
        expect((await host.getPullRequest(number)).headSha).toBe(pushed);
      });

      it('fails for a pull request that does not exist', async () => {
        await expect(host.getPullRequest(9999)).rejects.toThrow();
      });

      it('reads each commit’s own files: the pull request’s head and the default branch differ', async () => {
        const { headSha } = await pulls.open({ author: 'contributor', changes: { 'README.md': '# Changed\n', 'NEW.md': 'new\n', 'docs/removed.md': null } });
        expect(await host.readFile('README.md', headSha)).toBe('# Changed\n');
        expect(await host.readFile('README.md', opened.head.sha)).toBe(baseTree['README.md']);
        expect(await host.readFile('docs/removed.md', headSha)).toBeNull();
        expect(await host.readFile('NEW.md', opened.head.sha)).toBeNull();
        const names = (await host.listRoot(headSha)).map((entry) => entry.name);
        expect(names).toContain('NEW.md');
        const readme = async (sha: string) => (await host.listRoot(sha)).find((entry) => entry.name === 'README.md')!.sha;
        expect(await readme(headSha)).not.toBe(await readme(opened.head.sha));
      });

      it('lists the paths a pull request changes, both sides of a rename included', async () => {
        const { number } = await pulls.open({
          author: 'contributor',
          changes: { Dockerfile: 'FROM busybox\nCOPY . /app\n', 'added/file.txt': 'added\n', 'docs/removed.md': null },
          renames: [['docs/old-name.md', 'docs/new-name.md']],
        });
        expect((await host.listChangedFiles(number)).sort()).toStrictEqual(['Dockerfile', 'added/file.txt', 'docs/new-name.md', 'docs/old-name.md', 'docs/removed.md']);
      });

      it('lists reviews oldest first, state upper-case, each with the commit it was on', async () => {
        const { number, headSha: first } = await pulls.open({ author: 'contributor', changes: { 'README.md': '# One\n' } });
        expect(await host.listReviews(number)).toStrictEqual([]);

        const approved = await pulls.review(number, 'alice', 'APPROVED');
        const second = await pulls.push(number, { 'README.md': '# Two\n' });
        const changes = await pulls.review(number, 'bob', 'CHANGES_REQUESTED');
        const comment = await pulls.review(number, 'carol', 'COMMENTED', first);
        const dismissed = await pulls.review(number, 'dave', 'DISMISSED');

        expect(await host.listReviews(number)).toStrictEqual([
          { id: approved, reviewer: 'alice', state: 'APPROVED', commitId: first },
          { id: changes, reviewer: 'bob', state: 'CHANGES_REQUESTED', commitId: second },
          { id: comment, reviewer: 'carol', state: 'COMMENTED', commitId: first },
          { id: dismissed, reviewer: 'dave', state: 'DISMISSED', commitId: second },
        ]);
      });
    });
  });
}
