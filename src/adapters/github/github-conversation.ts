/**
 * Where the webhook adapter answers people: replies on the pull request or issue, and reactions
 * on the comment that gave the command. The run service never writes here; it returns outcomes.
 */
import type { Octokit } from './octokit.js';
import type { Redact } from './redact-secrets.js';

export type Reaction = '+1' | 'rocket' | 'eyes' | 'confused';

export class GithubConversation {
  constructor(
    private readonly octokit: Octokit,
    private readonly repo: { owner: string; name: string },
    /** Replies quote what people and runs wrote; they are public, so secrets go first. */
    private readonly redact: Redact = (text) => text,
  ) {}

  async react(commentId: number, content: Reaction): Promise<void> {
    await this.octokit.rest.reactions.createForIssueComment({ owner: this.repo.owner, repo: this.repo.name, comment_id: commentId, content });
  }

  async reply(number: number, body: string): Promise<void> {
    await this.octokit.rest.issues.createComment({ owner: this.repo.owner, repo: this.repo.name, issue_number: number, body: this.redact(body) });
  }
}
