/** What the app asks of the code host (GitHub) while deciding on a command. */
export type RepoPermission = 'admin' | 'maintain' | 'write' | 'triage' | 'read' | 'none';

export interface CollaboratorPermission {
  /** GitHub's legacy base role: admin | write | read | none (maintain shows as write, triage as read). */
  permission: string;
  roleName: string | null;
  /** The fine-grained flags from `user.permissions`, when GitHub sent them. */
  flags: { admin?: boolean; maintain?: boolean; push?: boolean; triage?: boolean; pull?: boolean } | null;
}

export interface PullRequestInfo {
  number: number;
  headSha: string;
  author: string;
  state: string;
}

export interface RepoHost {
  getPermission(username: string): Promise<CollaboratorPermission>;
  getPullRequest(number: number): Promise<PullRequestInfo>;
  /** SHA of the default branch's HEAD. */
  getDefaultBranchHead(): Promise<{ branch: string; sha: string }>;
  /** Names of the entries at the root of the tree at `sha`. */
  listRoot(sha: string): Promise<string[]>;
  react(commentId: number, content: '+1' | 'rocket' | 'eyes' | 'confused'): Promise<void>;
  reply(number: number, body: string): Promise<void>;
}
