/**
 * A code host held in memory: roles, pull requests, reviews, changed files and the files of each
 * commit, set by whoever builds it. It answers as GitHub's REST API would for those facts, so the
 * run service, the policy and the whole command flow run without a network. Every question is
 * logged with when it started and ended, so a caller can see which ones waited on which.
 */
import { createHash } from 'node:crypto';
import type { CollaboratorPermission, PullRequestInfo, RepoHost, RepoPermission, RepoVisibility, ReviewInfo, TreeEntry } from '../../ports/repo-host.js';

export interface MemoryPullRequest {
  number: number;
  author: string;
  headSha: string;
  state: 'open' | 'closed';
  /** Paths the pull request changes. */
  changedFiles: string[];
  reviews: ReviewInfo[];
}

/** One question asked of the host: its name and arguments, and when it started and ended. */
export interface HostCall {
  what: string;
  started: number;
  ended: number | null;
}

const flagsFor: Record<RepoPermission, CollaboratorPermission> = {
  admin: { permission: 'admin', roleName: 'admin', flags: { admin: true, maintain: true, push: true, triage: true, pull: true } },
  maintain: { permission: 'write', roleName: 'maintain', flags: { admin: false, maintain: true, push: true, triage: true, pull: true } },
  write: { permission: 'write', roleName: 'write', flags: { admin: false, maintain: false, push: true, triage: true, pull: true } },
  triage: { permission: 'read', roleName: 'triage', flags: { admin: false, maintain: false, push: false, triage: true, pull: true } },
  read: { permission: 'read', roleName: 'read', flags: { admin: false, maintain: false, push: false, triage: false, pull: true } },
  none: { permission: 'none', roleName: null, flags: null },
};

export class MemoryRepoHost implements RepoHost {
  readonly calls: HostCall[] = [];
  defaultBranch = 'main';
  /** Private unless set otherwise: only those given a role may read it. */
  private visibility: RepoVisibility = 'private';
  private readonly roles = new Map<string, RepoPermission>();
  private readonly pulls = new Map<number, MemoryPullRequest>();
  private readonly commits = new Map<string, Map<string, string>>();
  private branchHead: string | null = null;
  private nextReviewId = 1;
  /** Fails the next calls whose name starts with the key, with the error given. */
  private readonly failures = new Map<string, Error>();

  /** @param latencyMs time each answer takes, so that calls made one after another add up. */
  constructor(private readonly options: { latencyMs?: number; clock?: () => number } = {}) {}

  setRole(login: string, role: RepoPermission): this {
    this.roles.set(login.toLowerCase(), role);
    return this;
  }

  setVisibility(visibility: RepoVisibility): this {
    this.visibility = visibility;
    return this;
  }

  /** Records a commit of `files` (path → text) and returns its SHA. */
  commit(files: Record<string, string>): string {
    const sha = createHash('sha1').update(JSON.stringify(Object.entries(files).sort())).update(String(this.commits.size)).digest('hex');
    this.commits.set(sha, new Map(Object.entries(files)));
    return sha;
  }

  /** Makes `sha` the default branch's HEAD. */
  setDefaultHead(sha: string): this {
    this.branchHead = sha;
    return this;
  }

  openPullRequest(pull: Omit<MemoryPullRequest, 'reviews' | 'state'> & { state?: 'open' | 'closed' }): MemoryPullRequest {
    const record: MemoryPullRequest = { state: 'open', reviews: [], ...pull };
    this.pulls.set(pull.number, record);
    return record;
  }

  push(number: number, headSha: string): void {
    this.pull(number).headSha = headSha;
  }

  review(number: number, reviewer: string, state: 'APPROVED' | 'CHANGES_REQUESTED' | 'COMMENTED' | 'DISMISSED', commitId?: string): ReviewInfo {
    const pull = this.pull(number);
    const review = { id: this.nextReviewId++, reviewer, state, commitId: commitId ?? pull.headSha };
    pull.reviews.push(review);
    return review;
  }

  failNext(what: 'getPermission' | 'getVisibility' | 'getPullRequest' | 'getDefaultBranchHead' | 'readFile' | 'listReviews' | 'listChangedFiles', error: Error): void {
    this.failures.set(what, error);
  }

  async getPermission(username: string): Promise<CollaboratorPermission> {
    return this.answer(`getPermission ${username}`, () => flagsFor[this.roles.get(username.toLowerCase()) ?? 'none']);
  }

  async getVisibility(): Promise<RepoVisibility> {
    return this.answer('getVisibility', () => this.visibility);
  }

  async getPullRequest(number: number): Promise<PullRequestInfo> {
    return this.answer(`getPullRequest ${number}`, () => {
      const pull = this.pull(number);
      return { number, headSha: pull.headSha, author: pull.author, state: pull.state };
    });
  }

  async getDefaultBranchHead(branch?: string): Promise<{ branch: string; sha: string }> {
    return this.answer(`getDefaultBranchHead${branch ? ` ${branch}` : ''}`, () => {
      if (this.branchHead === null) throw new Error('the repository has no commit on its default branch');
      return { branch: this.defaultBranch, sha: this.branchHead };
    });
  }

  async listRoot(sha: string): Promise<TreeEntry[]> {
    return this.answer(`listRoot ${sha.slice(0, 7)}`, () => {
      const names = new Map<string, TreeEntry>();
      for (const [path, text] of this.files(sha)) {
        const [name, ...rest] = path.split('/');
        if (rest.length === 0) names.set(name!, { name: name!, sha: createHash('sha1').update(text).digest('hex'), type: 'file' });
        else if (!names.has(name!)) names.set(name!, { name: name!, sha: '0'.repeat(40), type: 'dir' });
      }
      return [...names.values()];
    });
  }

  async readFile(path: string, sha: string): Promise<string | null> {
    return this.answer(`readFile ${path}`, () => this.files(sha).get(path) ?? null);
  }

  async listReviews(number: number): Promise<ReviewInfo[]> {
    return this.answer(`listReviews ${number}`, () => this.pull(number).reviews.map((review) => ({ ...review })));
  }

  async listChangedFiles(number: number): Promise<string[]> {
    return this.answer(`listChangedFiles ${number}`, () => [...this.pull(number).changedFiles]);
  }

  /**
   * The calls grouped into rounds: a call starts a new round when it started after an earlier
   * call had ended (it may have waited for that answer); calls that overlap ran in parallel.
   */
  rounds(): string[][] {
    const rounds: { endedBy: number; calls: string[] }[] = [];
    for (const call of [...this.calls].sort((a, b) => a.started - b.started)) {
      const current = rounds.at(-1);
      if (current && call.started < current.endedBy) current.calls.push(call.what);
      else rounds.push({ endedBy: call.ended ?? Infinity, calls: [call.what] });
      const last = rounds.at(-1)!;
      last.endedBy = Math.min(last.endedBy, call.ended ?? Infinity);
    }
    return rounds.map((round) => round.calls);
  }

  private pull(number: number): MemoryPullRequest {
    const pull = this.pulls.get(number);
    if (!pull) throw Object.assign(new Error(`there is no pull request #${number}`), { status: 404 });
    return pull;
  }

  private files(sha: string): Map<string, string> {
    const files = this.commits.get(sha);
    if (!files) throw Object.assign(new Error(`there is no commit ${sha}`), { status: 404 });
    return files;
  }

  private async answer<T>(what: string, compute: () => T): Promise<T> {
    const clock = this.options.clock ?? (() => performance.now());
    const call: HostCall = { what, started: clock(), ended: null };
    this.calls.push(call);
    try {
      if (this.options.latencyMs) await new Promise((resolve) => setTimeout(resolve, this.options.latencyMs));
      const failure = [...this.failures.keys()].find((key) => what.startsWith(key));
      if (failure !== undefined) {
        const error = this.failures.get(failure)!;
        this.failures.delete(failure);
        throw error;
      }
      return compute();
    } finally {
      call.ended = clock();
    }
  }
}
