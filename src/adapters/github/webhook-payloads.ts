/** The webhook fields the app relies on, parsed at the boundary. Anything else is ignored. */
import { z } from 'zod';

const account = z.object({ login: z.string(), type: z.string().optional() });

export const issueCommentCreatedSchema = z.object({
  action: z.literal('created'),
  comment: z.object({ id: z.number().int(), body: z.string().nullable(), user: account.nullable() }),
  issue: z.object({ number: z.number().int(), pull_request: z.unknown().optional() }),
  repository: z.object({ name: z.string(), owner: z.object({ login: z.string() }) }),
  installation: z.object({ id: z.number().int() }),
  sender: account,
});
export type IssueCommentCreated = z.infer<typeof issueCommentCreatedSchema>;
