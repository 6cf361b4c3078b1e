import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { preciseNow } from './http-server.js';

export interface DeliveryOptions {
  /** Reuse a delivery id, as GitHub does when a delivery is redelivered. */
  deliveryId?: string;
  /** Sign with this secret instead of the app's (to test rejection). */
  secret?: string;
  /** Send no signature headers at all. */
  unsigned?: boolean;
  /** Send this exact body instead of JSON.stringify(payload). */
  rawBody?: string;
}

export interface DeliveryResult {
  status: number;
  body: string;
  deliveryId: string;
  event: string;
}

export interface SentDelivery extends DeliveryResult {
  payload: unknown;
  headers: Record<string, string>;
  at: number;
  /** When the POST was sent, on the clock of the recorded requests' `startedAt` (preciseNow()). */
  startedAt: number;
}

export function signatures(secret: string, rawBody: string): { sha256: string; sha1: string } {
  return {
    sha256: `sha256=${createHmac('sha256', secret).update(rawBody).digest('hex')}`,
    sha1: `sha1=${createHmac('sha1', secret).update(rawBody).digest('hex')}`,
  };
}

/**
 * Delivers webhooks the way GitHub's Hookshot does: one POST per delivery, JSON body,
 * HMAC signatures of the exact raw bytes sent.
 * https://docs.github.com/en/webhooks/webhook-events-and-payloads#delivery-headers
 */
export class WebhookSender {
  readonly hookId = 100_000 + Math.floor(Math.random() * 900_000);
  private readonly agent = `GitHub-Hookshot/${randomBytes(4).toString('hex').slice(0, 7)}`;
  readonly sent: SentDelivery[] = [];

  constructor(
    private readonly appId: number,
    private readonly secret: string,
    public target: string | undefined,
  ) {}

  async deliver(event: string, payload: unknown, options: DeliveryOptions = {}): Promise<DeliveryResult> {
    if (!this.target) throw new Error('No webhook target: call setWebhookTarget(url) first');
    const deliveryId = options.deliveryId ?? randomUUID();
    const rawBody = options.rawBody ?? JSON.stringify(payload);
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'user-agent': this.agent,
      'x-github-event': event,
      'x-github-delivery': deliveryId,
      'x-github-hook-id': String(this.hookId),
      'x-github-hook-installation-target-type': 'integration',
      'x-github-hook-installation-target-id': String(this.appId),
    };
    if (!options.unsigned) {
      const sig = signatures(options.secret ?? this.secret, rawBody);
      headers['x-hub-signature'] = sig.sha1;
      headers['x-hub-signature-256'] = sig.sha256;
    }
    const startedAt = preciseNow();
    // GitHub gives up after 10 seconds.
    const response = await fetch(this.target, { method: 'POST', headers, body: rawBody, signal: AbortSignal.timeout(10_000) });
    const body = await response.text();
    const result = { status: response.status, body, deliveryId, event };
    this.sent.push({ ...result, payload, headers, at: Date.now(), startedAt });
    return result;
  }
}
