/** RepoHost over GitHub's REST API, for one repository and installation. */
import { z } from 'zod';
import { RetryableError } from '../../core/errors.js';
import type { CollaboratorPermission, PullRequestInfo, RepoHost } from '../../ports/repo-host.js';
import { httpStatus, type Octokit } from './octokit.js';

const permissionResponse = z.object({
  permission: z.string(),
  role_name: z.string().nullish(),
  user: z
    .object({
      permissions: z
        .object({
          admin: z.boolean().optional(),
          maintain: z.boolean().optional(),
          push: z.boolean().optional(),
          triage: z.boolean().optional(),
          pull: z.boolean().optional(),
        })
        .nullish(),
    })
    .nullish(),
});

const pullResponse = z.object({
  number: z.number(),
  state: z.string(),
  head: z.object({ sha: z.string().regex(/^[0-9a-f]{40}$/) }),
  user: z.object({ login: z.string() }).nullable(),
});

export class OctokitRepoHost implements RepoHost {
  constructor(
    private readonly octokit: Octokit,
    private readonly repo: { owner: string; name: string },
  ) {}

  async getPermission(username: string): Promise<CollaboratorPermission> {
    const response = await this.call('read the role of @' + username, () =>
      this.octokit.rest.repos.getCollaboratorPermissionLevel({ owner: this.repo.owner, repo: this.repo.name, username }),
    );
    const data = permissionResponse.parse(response.data);
    return { permission: data.permission, roleName: data.role_name ?? null, flags: data.user?.permissions ?? null };
  }

  async getPullRequest(number: number): Promise<PullRequestInfo> {
    const response = await this.call(`read pull request #${number}`, () =>
      this.octokit.rest.pulls.get({ owner: this.repo.owner, repo: this.repo.name, pull_number: number }),
    );
    const data = pullResponse.parse(response.data);
    return { number: data.number, headSha: data.head.sha, author: data.user?.login ?? 'ghost', state: data.state };
  }

  async getDefaultBranchHead(): Promise<{ branch: string; sha: string }> {
    const repo = await this.call('read the repository', () =>
      this.octokit.rest.repos.get({ owner: this.repo.owner, repo: this.repo.name }),
    );
    const branch = z.string().parse(repo.data.default_branch);
    const commit = await this.call(`read the head of ${branch}`, () =>
      this.octokit.rest.repos.getCommit({ owner: this.repo.owner, repo: this.repo.name, ref: `heads/${branch}` }),
    );
    return { branch, sha: z.string().regex(/^[0-9a-f]{40}$/).parse(commit.data.sha) };
  }

  async listRoot(sha: string): Promise<string[]> {
    const response = await this.call(`list the files of ${sha.slice(0, 7)}`, () =>
      this.octokit.rest.repos.getContent({ owner: this.repo.owner, repo: this.repo.name, path: '', ref: sha }),
    );
    const entries = z.array(z.object({ name: z.string() })).parse(response.data);
    return entries.map((entry) => entry.name);
  }

  async react(commentId: number, content: '+1' | 'rocket' | 'eyes' | 'confused'): Promise<void> {
    await this.octokit.rest.reactions.createForIssueComment({
      owner: this.repo.owner,
      repo: this.repo.name,
      comment_id: commentId,
      content,
    });
  }

  async reply(number: number, body: string): Promise<void> {
    await this.octokit.rest.issues.createComment({ owner: this.repo.owner, repo: this.repo.name, issue_number: number, body });
  }

  /** Server errors and rate limits are worth retrying; anything else is GitHub's final answer. */
  private async call<T>(what: string, request: () => Promise<T>): Promise<T> {
    try {
      return await request();
    } catch (error) {
      const status = httpStatus(error);
      if (status === undefined || status >= 500 || status === 429 || status === 403) {
        throw new RetryableError(`GitHub did not answer when asked to ${what} (${status ?? 'no response'})`, { cause: error });
      }
      throw error;
    }
  }
}
