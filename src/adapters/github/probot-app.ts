/** The Probot application: thin webhook handlers that hand deliveries to the intake. */
import type { ApplicationFunction } from 'probot';
import type { WebhookIntake } from './webhook-intake.js';
import { handledEvents } from './webhook-payloads.js';

/** `observe` gets the seconds each delivery took to accept (for metrics). */
export function createProbotApp(deps: { intake: WebhookIntake; observe?: (seconds: number) => void; now?: () => Date }): ApplicationFunction {
  const now = deps.now ?? (() => new Date());
  return (app) => {
    // Edited comments are never commands: only `issue_comment.created` is listened to.
    app.on([...handledEvents], async (context) => {
      // Probot has verified the signature by now. Answer GitHub at once; the work happens later.
      const action = (context.payload as { action?: unknown }).action;
      const event = typeof action === 'string' ? `${context.name}.${action}` : context.name;
      const started = performance.now();
      const fresh = await deps.intake.accept({ id: context.id, event, payload: context.payload, receivedAt: now() });
      deps.observe?.((performance.now() - started) / 1000);
      if (!fresh) context.log.info({ deliveryId: context.id }, 'redelivered webhook ignored: it was handled before');
    });
  };
}
