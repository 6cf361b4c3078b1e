import type { CheckRunRecord, Issue, IssueComment, Reaction, Repo, RepoState, Review, Role, User } from './state.js';

/**
 * Turns the fake's state into the JSON GitHub returns, with the fields an app may rely on
 * (taken from the response examples in GitHub's OpenAPI description).
 */
export class Representations {
  /** Set once the server listens: URLs in bodies point back at the fake. */
  baseUrl = 'http://127.0.0.1';

  constructor(private readonly app: { id: number; slug: string }) {}

  get api(): string {
    return `${this.baseUrl}/api/v3`;
  }

  nodeId(kind: string, id: number): string {
    return Buffer.from(`${kind}:${id}`).toString('base64').replace(/=+$/, '');
  }

  user(user: User): Record<string, unknown> {
    const url = `${this.api}/users/${user.login}`;
    return {
      login: user.login,
      id: user.id,
      node_id: this.nodeId(user.type === 'Bot' ? 'Bot' : 'User', user.id),
      avatar_url: `${this.baseUrl}/avatars/u/${user.id}?v=4`,
      gravatar_id: '',
      url,
      html_url: `${this.baseUrl}/${user.type === 'Bot' ? `apps/${user.login.replace(/\[bot\]$/, '')}` : user.login}`,
      followers_url: `${url}/followers`,
      following_url: `${url}/following{/other_user}`,
      gists_url: `${url}/gists{/gist_id}`,
      starred_url: `${url}/starred{/owner}{/repo}`,
      subscriptions_url: `${url}/subscriptions`,
      organizations_url: `${url}/orgs`,
      repos_url: `${url}/repos`,
      events_url: `${url}/events{/privacy}`,
      received_events_url: `${url}/received_events`,
      type: user.type,
      user_view_type: 'public',
      site_admin: false,
    };
  }

  permissions(role: Role): { admin: boolean; maintain: boolean; push: boolean; triage: boolean; pull: boolean } {
    const rank = ROLE_RANK[role];
    return {
      admin: rank >= ROLE_RANK.admin,
      maintain: rank >= ROLE_RANK.maintain,
      push: rank >= ROLE_RANK.write,
      triage: rank >= ROLE_RANK.triage,
      pull: rank >= ROLE_RANK.read,
    };
  }

  repository(repo: Repo, owner: User): Record<string, unknown> {
    const url = `${this.api}/repos/${repo.fullName}`;
    return {
      id: repo.id,
      node_id: this.nodeId('Repository', repo.id),
      name: repo.name,
      full_name: repo.fullName,
      private: repo.private,
      owner: this.user(owner),
      html_url: `${this.baseUrl}/${repo.fullName}`,
      description: null,
      fork: false,
      url,
      archive_url: `${url}/{archive_format}{/ref}`,
      branches_url: `${url}/branches{/branch}`,
      collaborators_url: `${url}/collaborators{/collaborator}`,
      comments_url: `${url}/comments{/number}`,
      commits_url: `${url}/commits{/sha}`,
      contents_url: `${url}/contents/{+path}`,
      issues_url: `${url}/issues{/number}`,
      pulls_url: `${url}/pulls{/number}`,
      clone_url: `${this.baseUrl}/${repo.fullName}.git`,
      git_url: `git://${new URL(this.baseUrl).host}/${repo.fullName}.git`,
      ssh_url: `git@${new URL(this.baseUrl).hostname}:${repo.fullName}.git`,
      created_at: repo.createdAt,
      updated_at: repo.createdAt,
      pushed_at: repo.createdAt,
      size: 0,
      archived: false,
      disabled: false,
      visibility: repo.private ? 'private' : 'public',
      default_branch: repo.defaultBranch,
      has_issues: true,
      open_issues_count: 0,
      forks_count: 0,
      stargazers_count: 0,
      watchers_count: 0,
      language: null,
      topics: [],
    };
  }

  /** GitHub's `author_association` for a user on a repository. */
  authorAssociation(repo: RepoState, login: string, role: Role, hasCommits = false): string {
    if (login.toLowerCase() === repo.owner.toLowerCase()) return 'OWNER';
    if (repo.roles.has(login.toLowerCase()) && role !== 'none') return ROLE_RANK[role] >= ROLE_RANK.maintain ? 'MEMBER' : 'COLLABORATOR';
    return hasCommits ? 'CONTRIBUTOR' : 'NONE';
  }

  issue(repo: Repo, owner: User, issue: Issue, association: string): Record<string, unknown> {
    const url = `${this.api}/repos/${repo.fullName}/issues/${issue.number}`;
    const out: Record<string, unknown> = {
      id: issue.id,
      node_id: this.nodeId(issue.pull ? 'PullRequest' : 'Issue', issue.id),
      url,
      repository_url: `${this.api}/repos/${repo.fullName}`,
      labels_url: `${url}/labels{/name}`,
      comments_url: `${url}/comments`,
      events_url: `${url}/events`,
      html_url: `${this.baseUrl}/${repo.fullName}/${issue.pull ? 'pull' : 'issues'}/${issue.number}`,
      number: issue.number,
      state: issue.state,
      state_reason: null,
      title: issue.title,
      body: issue.body,
      user: this.user(issue.user),
      labels: [],
      assignee: null,
      assignees: [],
      milestone: null,
      locked: false,
      active_lock_reason: null,
      comments: 0,
      closed_at: null,
      created_at: issue.createdAt,
      updated_at: issue.updatedAt,
      author_association: association,
      reactions: this.reactionRollup(url, []),
    };
    if (issue.pull) {
      out.draft = false;
      out.pull_request = {
        url: `${this.api}/repos/${repo.fullName}/pulls/${issue.number}`,
        html_url: `${this.baseUrl}/${repo.fullName}/pull/${issue.number}`,
        diff_url: `${this.baseUrl}/${repo.fullName}/pull/${issue.number}.diff`,
        patch_url: `${this.baseUrl}/${repo.fullName}/pull/${issue.number}.patch`,
        merged_at: null,
      };
    }
    void owner;
    return out;
  }

  pullRequest(repo: Repo, owner: User, issue: Issue, association: string): Record<string, unknown> {
    const pull = issue.pull;
    if (!pull) throw new Error(`#${issue.number} is not a pull request`);
    const url = `${this.api}/repos/${repo.fullName}/pulls/${issue.number}`;
    const repository = this.repository(repo, owner);
    const side = (ref: string, sha: string) => ({
      label: `${repo.owner}:${ref}`,
      ref,
      sha,
      user: this.user(owner),
      repo: repository,
    });
    return {
      url,
      id: pull.id,
      node_id: this.nodeId('PullRequest', pull.id),
      html_url: `${this.baseUrl}/${repo.fullName}/pull/${issue.number}`,
      diff_url: `${this.baseUrl}/${repo.fullName}/pull/${issue.number}.diff`,
      patch_url: `${this.baseUrl}/${repo.fullName}/pull/${issue.number}.patch`,
      issue_url: `${this.api}/repos/${repo.fullName}/issues/${issue.number}`,
      commits_url: `${url}/commits`,
      review_comments_url: `${url}/comments`,
      comments_url: `${this.api}/repos/${repo.fullName}/issues/${issue.number}/comments`,
      statuses_url: `${this.api}/repos/${repo.fullName}/statuses/${pull.headSha}`,
      number: issue.number,
      state: issue.state,
      locked: false,
      title: issue.title,
      user: this.user(issue.user),
      body: issue.body,
      labels: [],
      milestone: null,
      active_lock_reason: null,
      created_at: issue.createdAt,
      updated_at: issue.updatedAt,
      closed_at: null,
      merged_at: null,
      merge_commit_sha: null,
      assignee: null,
      assignees: [],
      requested_reviewers: [],
      requested_teams: [],
      head: side(pull.headRef, pull.headSha),
      base: side(pull.baseRef, pull.baseSha),
      author_association: association,
      auto_merge: null,
      draft: false,
      merged: pull.merged,
      mergeable: null,
      rebaseable: null,
      mergeable_state: 'unknown',
      merged_by: null,
      comments: 0,
      review_comments: 0,
      maintainer_can_modify: false,
      commits: 1,
      additions: 0,
      deletions: 0,
      changed_files: 0,
    };
  }

  review(repo: Repo, number: number, review: Review, association: string): Record<string, unknown> {
    return {
      id: review.id,
      node_id: this.nodeId('PullRequestReview', review.id),
      user: this.user(review.user),
      body: review.body ?? '',
      state: review.state,
      html_url: `${this.baseUrl}/${repo.fullName}/pull/${number}#pullrequestreview-${review.id}`,
      pull_request_url: `${this.api}/repos/${repo.fullName}/pulls/${number}`,
      _links: {
        html: { href: `${this.baseUrl}/${repo.fullName}/pull/${number}#pullrequestreview-${review.id}` },
        pull_request: { href: `${this.api}/repos/${repo.fullName}/pulls/${number}` },
      },
      submitted_at: review.submittedAt,
      commit_id: review.commitId,
      author_association: association,
    };
  }

  comment(repo: Repo, comment: IssueComment, association: string, reactions: Reaction[]): Record<string, unknown> {
    const url = `${this.api}/repos/${repo.fullName}/issues/comments/${comment.id}`;
    return {
      id: comment.id,
      node_id: this.nodeId('IssueComment', comment.id),
      url,
      html_url: `${this.baseUrl}/${repo.fullName}/issues/${comment.issueNumber}#issuecomment-${comment.id}`,
      body: comment.body,
      user: this.user(comment.user),
      created_at: comment.createdAt,
      updated_at: comment.updatedAt,
      issue_url: `${this.api}/repos/${repo.fullName}/issues/${comment.issueNumber}`,
      author_association: association,
      performed_via_github_app: comment.user.type === 'Bot' ? this.appSummary() : null,
      reactions: this.reactionRollup(url, reactions),
    };
  }

  reaction(reaction: Reaction): Record<string, unknown> {
    return {
      id: reaction.id,
      node_id: this.nodeId('Reaction', reaction.id),
      user: this.user(reaction.user),
      content: reaction.content,
      created_at: reaction.createdAt,
    };
  }

  reactionRollup(url: string, reactions: Reaction[]): Record<string, unknown> {
    const count = (c: string) => reactions.filter((r) => r.content === c).length;
    return {
      url: `${url}/reactions`,
      total_count: reactions.length,
      '+1': count('+1'),
      '-1': count('-1'),
      laugh: count('laugh'),
      hooray: count('hooray'),
      confused: count('confused'),
      heart: count('heart'),
      rocket: count('rocket'),
      eyes: count('eyes'),
    };
  }

  appSummary(owner?: User): Record<string, unknown> {
    const now = '2026-01-01T00:00:00Z';
    return {
      id: this.app.id,
      slug: this.app.slug,
      node_id: this.nodeId('Integration', this.app.id),
      client_id: `Iv1.${this.app.id.toString(16).padStart(16, '0')}`,
      owner: owner ? this.user(owner) : null,
      name: this.app.slug,
      description: '',
      external_url: this.baseUrl,
      html_url: `${this.baseUrl}/apps/${this.app.slug}`,
      created_at: now,
      updated_at: now,
      permissions: APP_PERMISSIONS,
      events: ['check_run', 'issue_comment', 'pull_request', 'pull_request_review', 'push'],
      installations_count: 1,
    };
  }

  checkRun(repo: Repo, run: CheckRunRecord, owner?: User): Record<string, unknown> {
    const url = `${this.api}/repos/${repo.fullName}/check-runs/${run.id}`;
    return {
      id: run.id,
      head_sha: run.headSha,
      node_id: this.nodeId('CheckRun', run.id),
      external_id: run.externalId ?? '',
      url,
      html_url: `${this.baseUrl}/${repo.fullName}/runs/${run.id}`,
      details_url: run.detailsUrl ?? `${this.baseUrl}/apps/${this.app.slug}`,
      status: run.status,
      conclusion: run.conclusion,
      started_at: run.startedAt,
      completed_at: run.completedAt,
      output: {
        title: run.output.title,
        summary: run.output.summary,
        text: run.output.text,
        annotations_count: run.output.annotationsCount,
        annotations_url: `${url}/annotations`,
      },
      name: run.name,
      check_suite: { id: run.id + 7_000_000 },
      app: this.appSummary(owner),
      pull_requests: [],
    };
  }
}

export const ROLE_RANK: Record<Role, number> = { none: 0, read: 1, triage: 2, write: 3, maintain: 4, admin: 5 };

/** What the app is installed with (see app.yml). */
export const APP_PERMISSIONS = {
  checks: 'write',
  contents: 'read',
  issues: 'write',
  pull_requests: 'write',
  metadata: 'read',
} as const;
