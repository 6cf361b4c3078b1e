/** The Probot application: thin webhook handlers that hand deliveries to the intake. */
import type { ApplicationFunction } from 'probot';
import type { CommentIntake } from './comment-intake.js';

export function createProbotApp(deps: { intake: CommentIntake; now?: () => Date }): ApplicationFunction {
  const now = deps.now ?? (() => new Date());
  return (app) => {
    app.on('issue_comment.created', async (context) => {
      // Probot has verified the signature by now. Answer GitHub at once; the work happens later.
      const fresh = await deps.intake.accept({ id: context.id, event: 'issue_comment.created', payload: context.payload, receivedAt: now() });
      if (!fresh) context.log.info({ deliveryId: context.id }, 'redelivered webhook ignored: it was handled before');
    });
  };
}
