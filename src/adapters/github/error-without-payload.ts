/**
 * pino's `err` serializer without webhook payloads. @octokit/webhooks attaches the delivery to
 * every error it reports (`error.event = { id, name, payload, signature }`, a wrong signature
 * included) and Probot logs those errors whole, so a stranger's body became one log line as long
 * as the body. Here a delivery keeps its id and name, and its payload becomes its size.
 *
 * A refusal of a request (an error with a 4xx `status`, such as a wrong signature, or an
 * AggregateError of such) is the sender's doing, not a fault of the app: it is logged without
 * stacks, which only ever show the verifier and which made each stranger's request with a wrong
 * signature a 2.6 KB line.
 */
import { stdSerializers } from 'pino';

export function serializeErrorWithoutPayload(error: unknown): unknown {
  return withoutPayloads(stdSerializers.err(error as Error), 0);
}

interface Delivery {
  id?: unknown;
  name?: unknown;
  payload: unknown;
}

function withoutPayloads(serialized: unknown, depth: number): unknown {
  if (!isSerializedError(serialized) || depth > 4) return serialized;
  for (const [key, value] of Object.entries(serialized)) {
    if (key === 'event' && isDelivery(value)) serialized[key] = summary(value);
    else if (Array.isArray(value)) value.forEach((item) => withoutPayloads(item, depth + 1));
    else withoutPayloads(value, depth + 1);
  }
  if (isRefusal(serialized)) withoutStacks(serialized, 0);
  return serialized;
}

function isRefusal(serialized: Record<string, unknown>): boolean {
  const { status, aggregateErrors } = serialized;
  if (typeof status === 'number') return status >= 400 && status < 500;
  return Array.isArray(aggregateErrors) && aggregateErrors.length > 0 && aggregateErrors.every((error) => isSerializedError(error) && isRefusal(error));
}

function withoutStacks(serialized: unknown, depth: number): void {
  if (typeof serialized !== 'object' || serialized === null || depth > 4) return;
  if (isSerializedError(serialized)) delete serialized.stack;
  for (const value of Object.values(serialized)) {
    if (Array.isArray(value)) value.forEach((item) => withoutStacks(item, depth + 1));
    else withoutStacks(value, depth + 1);
  }
}

function isSerializedError(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && typeof (value as { type?: unknown }).type === 'string' && 'stack' in value;
}

function isDelivery(value: unknown): value is Delivery {
  return typeof value === 'object' && value !== null && 'payload' in value;
}

function summary(delivery: Delivery): { id: unknown; name: unknown; bytes?: number } {
  const { id, name, payload } = delivery;
  return { id: short(id), name: short(name), ...(typeof payload === 'string' ? { bytes: Buffer.byteLength(payload) } : {}) };
}

/** Ids and names come from request headers: a stranger chooses their length. */
function short(value: unknown): unknown {
  return typeof value === 'string' ? value.slice(0, 100) : value;
}
