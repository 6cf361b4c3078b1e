/** RepoHost over GitHub's REST API, for one repository and installation. */
import { z } from 'zod';
import { RetryableError } from '../../ports/errors.js';
import type { CollaboratorPermission, PullRequestInfo, RepoHost, RepoVisibility, ReviewInfo, TreeEntry } from '../../ports/repo-host.js';
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

/** `visibility` is newer than `private` and absent from some GitHub Enterprise Server answers. */
const repositoryResponse = z.object({
  private: z.boolean(),
  visibility: z.enum(['public', 'private', 'internal']).optional(),
});

const pullResponse = z.object({
  number: z.number(),
  state: z.string(),
  head: z.object({ sha: z.string().regex(/^[0-9a-f]{40}$/) }),
  user: z.object({ login: z.string() }).nullable(),
});

function retryAfter(error: unknown): number | undefined {
  const headers = (error as { response?: { headers?: Record<string, string | undefined> } }).response?.headers ?? {};
  const seconds = Number(headers['retry-after']);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const reset = Number(headers['x-ratelimit-reset']);
  if (headers['x-ratelimit-remaining'] === '0' && Number.isFinite(reset)) return Math.max(0, reset * 1000 - Date.now());
  return undefined;
}

export class OctokitRepoHost implements RepoHost {
  constructor(
    private readonly octokit: Octokit,
    private readonly repo: { owner: string; name: string },
  ) {}

  async getPermission(username: string): Promise<CollaboratorPermission> {
    let response;
    try {
      response = await this.call('read the role of @' + username, () =>
        this.octokit.rest.repos.getCollaboratorPermissionLevel({ owner: this.repo.owner, repo: this.repo.name, username }),
      );
    } catch (error) {
      // GitHub answers 404 for a login it does not know (a deleted account, "ghost"): no role.
      if (httpStatus(error) === 404) return { permission: 'none', roleName: null, flags: null };
      throw error;
    }
    const data = permissionResponse.parse(response.data);
    return { permission: data.permission, roleName: data.role_name ?? null, flags: data.user?.permissions ?? null };
  }

  async getVisibility(): Promise<RepoVisibility> {
    const response = await this.call('read the repository', () => this.octokit.rest.repos.get({ owner: this.repo.owner, repo: this.repo.name }));
    const data = repositoryResponse.parse(response.data);
    return data.visibility ?? (data.private ? 'private' : 'public');
  }

  async getPullRequest(number: number): Promise<PullRequestInfo> {
    const response = await this.call(`read pull request #${number}`, () =>
      this.octokit.rest.pulls.get({ owner: this.repo.owner, repo: this.repo.name, pull_number: number }),
    );
    const data = pullResponse.parse(response.data);
    return { number: data.number, headSha: data.head.sha, author: data.user?.login ?? 'ghost', state: data.state };
  }

  async getDefaultBranchHead(known?: string): Promise<{ branch: string; sha: string }> {
    const branch =
      known ??
      z.string().parse((await this.call('read the repository', () => this.octokit.rest.repos.get({ owner: this.repo.owner, repo: this.repo.name }))).data.default_branch);
    const commit = await this.call(`read the head of ${branch}`, () =>
      this.octokit.rest.repos.getCommit({ owner: this.repo.owner, repo: this.repo.name, ref: `heads/${branch}` }),
    );
    return { branch, sha: z.string().regex(/^[0-9a-f]{40}$/).parse(commit.data.sha) };
  }

  async listRoot(sha: string): Promise<TreeEntry[]> {
    const response = await this.call(`list the files of ${sha.slice(0, 7)}`, () =>
      this.octokit.rest.repos.getContent({ owner: this.repo.owner, repo: this.repo.name, path: '', ref: sha }),
    );
    return z.array(z.object({ name: z.string(), sha: z.string(), type: z.string() })).parse(response.data);
  }

  async readFile(path: string, sha: string): Promise<string | null> {
    let response;
    try {
      response = await this.call(`read ${path} at ${sha.slice(0, 7)}`, () =>
        this.octokit.rest.repos.getContent({ owner: this.repo.owner, repo: this.repo.name, path, ref: sha }),
      );
    } catch (error) {
      if (httpStatus(error) === 404) return null;
      throw error;
    }
    const file = z.object({ type: z.literal('file'), content: z.string(), encoding: z.literal('base64') }).safeParse(response.data);
    return file.success ? Buffer.from(file.data.content, 'base64').toString('utf8') : null;
  }

  async listReviews(number: number): Promise<ReviewInfo[]> {
    const reviews = await this.call(`list the reviews of #${number}`, () =>
      this.octokit.paginate(this.octokit.rest.pulls.listReviews, { owner: this.repo.owner, repo: this.repo.name, pull_number: number, per_page: 100 }),
    );
    return z
      .array(z.object({ id: z.number(), state: z.string(), commit_id: z.string().nullish(), user: z.object({ login: z.string() }).nullable() }))
      .parse(reviews)
      .map((review) => ({ id: review.id, reviewer: review.user?.login ?? 'ghost', state: review.state.toUpperCase(), commitId: review.commit_id ?? null }));
  }

  async listChangedFiles(number: number): Promise<string[]> {
    // GitHub lists at most 3,000 files; a larger change is treated as changing everything.
    const files = await this.call(`list the files #${number} changes`, () =>
      this.octokit.paginate(this.octokit.rest.pulls.listFiles, { owner: this.repo.owner, repo: this.repo.name, pull_number: number, per_page: 100 }),
    );
    const parsed = z.array(z.object({ filename: z.string(), previous_filename: z.string().optional() })).parse(files);
    return parsed.flatMap((file) => (file.previous_filename ? [file.filename, file.previous_filename] : [file.filename]));
  }

  /**
   * Server errors and rate limits are worth retrying (Octokit already retried server errors with
   * back-off); anything else is GitHub's final answer. A rate limit says when to come back.
   * https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api
   */
  private async call<T>(what: string, request: () => Promise<T>): Promise<T> {
    try {
      return await request();
    } catch (error) {
      const status = httpStatus(error);
      if (status === undefined || status >= 500 || status === 429 || status === 403) {
        const retryAfterMs = retryAfter(error);
        throw new RetryableError(`GitHub did not answer when asked to ${what} (${status ?? 'no response'})`, {
          cause: error,
          ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
        });
      }
      throw error;
    }
  }
}
