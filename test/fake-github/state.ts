import type { GitRepo } from './git-repo.js';

export type Role = 'admin' | 'maintain' | 'write' | 'triage' | 'read' | 'none';

export interface User {
  id: number;
  login: string;
  type: 'User' | 'Bot' | 'Organization';
}

export interface Repo {
  id: number;
  owner: string;
  name: string;
  fullName: string;
  defaultBranch: string;
  private: boolean;
  /** Working directory of the git repository behind this repo. */
  dir: string;
  createdAt: string;
}

export interface RepoState extends Repo {
  git: GitRepo;
  roles: Map<string, Role>;
}

export interface Issue {
  id: number;
  number: number;
  title: string;
  body: string | null;
  user: User;
  state: 'open' | 'closed';
  createdAt: string;
  updatedAt: string;
  /** Present when the issue is a pull request. */
  pull?: PullRequest;
}

export interface PullRequest {
  id: number;
  headRef: string;
  headSha: string;
  baseRef: string;
  /** The base branch's SHA when the PR was opened or last synchronized. */
  baseSha: string;
  merged: boolean;
}

export interface Review {
  id: number;
  user: User;
  state: 'APPROVED' | 'CHANGES_REQUESTED' | 'COMMENTED' | 'DISMISSED' | 'PENDING';
  body: string | null;
  commitId: string;
  submittedAt: string;
}

export interface IssueComment {
  id: number;
  issueNumber: number;
  user: User;
  body: string;
  createdAt: string;
  updatedAt: string;
}

export interface Reaction {
  id: number;
  commentId: number;
  user: User;
  content: string;
  createdAt: string;
}

export interface CheckRunRecord {
  id: number;
  repo: string;
  name: string;
  headSha: string;
  status: 'queued' | 'in_progress' | 'completed' | 'waiting' | 'requested' | 'pending';
  conclusion: string | null;
  externalId: string | null;
  detailsUrl: string | null;
  startedAt: string | null;
  completedAt: string | null;
  output: { title: string | null; summary: string | null; text: string | null; annotationsCount: number };
  actions: Array<{ label: string; description: string; identifier: string }>;
  /** Every body the app sent for this check run (create first), in order. */
  history: Array<Record<string, unknown>>;
}

export interface Installation {
  id: number;
  account: User;
}

/** Hands out GitHub-like increasing IDs, one sequence per kind of object. */
export class IdSequence {
  private next = new Map<string, number>();
  take(kind: string, start = 1000): number {
    const n = this.next.get(kind) ?? start;
    this.next.set(kind, n + 1);
    return n;
  }
}

/** The fake's memory: everything a test can set up or assert on. */
export class FakeState {
  readonly ids = new IdSequence();
  readonly users = new Map<string, User>();
  readonly repos = new Map<string, RepoState>();
  readonly issues = new Map<string, Map<number, Issue>>();
  readonly reviews = new Map<string, Review[]>();
  readonly comments = new Map<number, IssueComment & { repo: string }>();
  readonly reactions: Array<Reaction> = [];
  readonly checkRuns = new Map<number, CheckRunRecord>();

  user(login: string, type?: User['type']): User {
    let user = this.users.get(login.toLowerCase());
    if (!user) {
      const resolved = type ?? (login.endsWith('[bot]') ? 'Bot' : 'User');
      user = { id: this.ids.take('user', 5000), login, type: resolved };
      this.users.set(login.toLowerCase(), user);
    }
    return user;
  }

  repo(owner: string, name: string): RepoState | undefined {
    return this.repos.get(`${owner}/${name}`.toLowerCase());
  }

  issuesOf(repo: Repo): Map<number, Issue> {
    const key = repo.fullName.toLowerCase();
    let map = this.issues.get(key);
    if (!map) {
      map = new Map();
      this.issues.set(key, map);
    }
    return map;
  }

  reviewsOf(repo: Repo, number: number): Review[] {
    const key = `${repo.fullName.toLowerCase()}#${number}`;
    let list = this.reviews.get(key);
    if (!list) {
      list = [];
      this.reviews.set(key, list);
    }
    return list;
  }

  /**
   * The role a user effectively has, as GitHub computes it: the owner is admin, explicit
   * roles win, and on a public repository anyone else can read.
   */
  roleOf(repo: RepoState, login: string): Role {
    const explicit = repo.roles.get(login.toLowerCase());
    if (explicit) return explicit;
    if (login.toLowerCase() === repo.owner.toLowerCase()) return 'admin';
    return repo.private ? 'none' : 'read';
  }
}
