/** The webhook fields the app relies on, parsed at the boundary. Anything else is ignored. */
import { z } from 'zod';

const account = z.object({ login: z.string(), type: z.string().optional() });
const repository = z.object({ name: z.string(), owner: z.object({ login: z.string() }), default_branch: z.string().min(1).optional() });
const installation = z.object({ id: z.number().int() });
const sha = z.string().regex(/^[0-9a-f]{40}$/);

export const issueCommentCreatedSchema = z.object({
  action: z.literal('created'),
  comment: z.object({ id: z.number().int(), body: z.string().nullable(), user: account.nullable() }),
  issue: z.object({ number: z.number().int(), pull_request: z.unknown().optional() }),
  repository,
  installation,
  sender: account,
});

export const pullRequestSynchronizeSchema = z.object({
  action: z.literal('synchronize'),
  number: z.number().int(),
  pull_request: z.object({ head: z.object({ sha }) }),
  repository,
  installation,
});

export const pullRequestClosedSchema = z.object({
  action: z.literal('closed'),
  number: z.number().int(),
  /** True when the pull request was merged, false when it was closed without merging. */
  pull_request: z.object({ merged: z.boolean().nullish() }),
  repository,
  installation,
});

export const checkRunActionSchema = z.object({
  action: z.enum(['rerequested', 'requested_action']),
  check_run: z.object({ id: z.number().int(), external_id: z.string().nullable(), head_sha: sha }),
  requested_action: z.object({ identifier: z.string() }).nullish(),
  repository,
  installation,
  sender: account,
});

/** A push to a branch or tag (the event has no `action`). */
export const pushSchema = z.object({
  ref: z.string(),
  after: sha,
  repository,
  installation,
});

/** Events the app acts on, by `<event>.<action>` (or `<event>` for events without actions). */
export const handledEvents = [
  'push',
  'issue_comment.created',
  'pull_request.synchronize',
  'pull_request.closed',
  'check_run.rerequested',
  'check_run.requested_action',
] as const;
export type HandledEvent = (typeof handledEvents)[number];

export function isBot(user: { login: string; type?: string | undefined }): boolean {
  return user.type === 'Bot' || user.login.endsWith('[bot]');
}
