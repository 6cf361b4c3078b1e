/**
 * Who may see a run: reads follow GitHub. A GitHub user sees the runs (records, logs, events) of
 * a repository only if that user can read the repository — at least the `read` role through the
 * App's installation, or anyone signed in when the repository is public. Service tokens and the
 * App see everything. Adapters leave out what this says no to, and answer as if it did not exist
 * (GitHub answers 404, not 403, for a private repository one cannot see, so as not to confirm it
 * exists).
 * https://docs.github.com/en/rest/using-the-rest-api/troubleshooting-the-rest-api#404-not-found-for-an-existing-resource
 *
 * Answers are kept for a minute per (login, repository), so a client polling a listing does not
 * spend the installation's rate limit; a role taken away shows within that minute.
 */
import { RetryableError } from '../../ports/errors.js';
import type { RepoHost } from '../../ports/repo-host.js';
import { roleAtLeast, roleFromPermission } from '../policy/roles.js';
import type { RepoRef, Requester, Run } from '../runs/run.js';
import { fullName, permissionOf } from './requests.js';

export interface ReadAccessDeps {
  hostFor: (repo: RepoRef) => Promise<RepoHost>;
  now: () => Date;
  /** How long an answer is kept (default a minute). */
  keepMs?: number;
  /** How many answers are kept at most; the oldest go first (default 10,000). */
  maxEntries?: number;
}

export class ReadAccess {
  private readonly answers = new Map<string, { canRead: Promise<boolean>; until: number }>();
  private readonly keepMs: number;
  private readonly maxEntries: number;

  constructor(private readonly deps: ReadAccessDeps) {
    this.keepMs = deps.keepMs ?? 60_000;
    this.maxEntries = deps.maxEntries ?? 10_000;
  }

  /**
   * Whether `requester` may see the runs of `repo`. GitHub failing past its retries (a
   * RetryableError) is thrown, so the caller says the request failed instead of "no such run";
   * a final answer that is not one (the App no longer sees the repository) means no.
   */
  canRead(requester: Requester, repo: RepoRef): Promise<boolean> {
    if (requester.kind !== 'user') return Promise.resolve(true);
    const key = `${requester.login.toLowerCase()}\0${fullName(repo).toLowerCase()}`;
    const now = this.deps.now().getTime();
    const known = this.answers.get(key);
    if (known && known.until > now) return known.canRead;
    const answer = this.ask(requester, repo);
    this.answers.delete(key);
    this.answers.set(key, { canRead: answer, until: now + this.keepMs });
    // Failures are not kept: the next request asks GitHub again.
    answer.catch(() => this.answers.delete(key));
    while (this.answers.size > this.maxEntries) this.answers.delete(this.answers.keys().next().value!);
    return answer;
  }

  /** The runs `requester` may see, in their order; one question per repository. */
  async readable(requester: Requester, runs: readonly Run[]): Promise<Run[]> {
    if (requester.kind !== 'user') return [...runs];
    const repos = new Map<string, RepoRef>();
    for (const run of runs) repos.set(fullName(run.repo).toLowerCase(), run.repo);
    const allowed = new Set<string>();
    await Promise.all(
      [...repos].map(async ([name, repo]) => {
        if (await this.canRead(requester, repo)) allowed.add(name);
      }),
    );
    return runs.filter((run) => allowed.has(fullName(run.repo).toLowerCase()));
  }

  private async ask(requester: Requester, repo: RepoRef): Promise<boolean> {
    try {
      const host = await this.deps.hostFor(repo);
      if ((await host.getVisibility()) === 'public') return true;
      // Private and internal alike: only a role the collaborator permission reports counts
      // (enterprise membership is not asked, so an internal repository fails closed).
      return roleAtLeast(roleFromPermission(await permissionOf(host, requester)), 'read');
    } catch (error) {
      if (error instanceof RetryableError) throw error;
      return false;
    }
  }
}
