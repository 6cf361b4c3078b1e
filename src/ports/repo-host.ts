/**
 * What the app reads from the code host (GitHub) while deciding on a request. Reads only: the
 * run service never writes to GitHub; the webhook adapter renders its outcomes as replies.
 */
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

export interface TreeEntry {
  name: string;
  /** Git object id: a digest of the file's content. */
  sha: string;
  type: string;
}

export interface ReviewInfo {
  id: number;
  reviewer: string;
  state: string;
  commitId: string | null;
}

/**
 * Who may see a repository: anyone (`public`), its collaborators (`private`), or the members of
 * its enterprise (`internal`).
 * https://docs.github.com/en/repositories/creating-and-managing-repositories/about-repositories#about-repository-visibility
 */
export type RepoVisibility = 'public' | 'private' | 'internal';

export interface RepoHost {
  getPermission(username: string): Promise<CollaboratorPermission>;
  /** The repository's visibility, as GitHub reports it now. */
  getVisibility(): Promise<RepoVisibility>;
  getPullRequest(number: number): Promise<PullRequestInfo>;
  /**
   * SHA of the default branch's HEAD. `branch`, when the caller already knows the default
   * branch's name (a webhook payload carries it), saves asking for it.
   */
  getDefaultBranchHead(branch?: string): Promise<{ branch: string; sha: string }>;
  /** Entries at the root of the tree at `sha`. */
  listRoot(sha: string): Promise<TreeEntry[]>;
  /** A file's text at `sha`, or null when there is no such file. */
  readFile(path: string, sha: string): Promise<string | null>;
  /** Reviews of a pull request, oldest first. */
  listReviews(number: number): Promise<ReviewInfo[]>;
  /** Paths a pull request changes (both sides of a rename). */
  listChangedFiles(number: number): Promise<string[]>;
}
