import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

interface ExampleGroup {
  name: string;
  examples: Array<Record<string, unknown>>;
}

let examples: ExampleGroup[] | undefined;

function allExamples(): ExampleGroup[] {
  if (!examples) {
    const require = createRequire(import.meta.url);
    const file = require.resolve('@octokit/webhooks-examples/api.github.com/index.json');
    examples = JSON.parse(readFileSync(file, 'utf8')) as ExampleGroup[];
  }
  return examples;
}

/**
 * The real example GitHub documents for `event.action`, preferring one sent to an app
 * (with an `installation` key) and the richest one otherwise. Returned as a fresh copy.
 */
export function realExample(event: string, action: string): Record<string, unknown> {
  const group = allExamples().find((g) => g.name === event);
  const candidates = (group?.examples ?? []).filter((e) => e.action === action);
  if (candidates.length === 0) throw new Error(`@octokit/webhooks-examples has no ${event}.${action} example`);
  const best = [...candidates].sort(
    (a, b) => Number('installation' in b) - Number('installation' in a) || Object.keys(b).length - Object.keys(a).length,
  )[0];
  return structuredClone(best) as Record<string, unknown>;
}

/** Lays `ours` over `base`: our values win, keys only the example has are kept. */
export function overlay(base: unknown, ours: unknown): unknown {
  if (!isObject(base) || !isObject(ours)) return ours;
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(ours)) {
    out[key] = key in base ? overlay(base[key], value) : value;
  }
  return out;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Starts from the real example and fills in the fake's state. The example's `organization`
 * is dropped: the fake's owners are plain accounts.
 */
export function buildPayload(event: string, action: string, ours: Record<string, unknown>): Record<string, unknown> {
  const example = realExample(event, action);
  delete example.organization;
  const payload = overlay(example, { ...ours, action }) as Record<string, unknown>;
  // Objects the example carries for its own scenario but that do not apply here.
  for (const key of Object.keys(payload)) {
    if (!(key in ours) && key !== 'action' && isObject(payload[key]) && ['changes', 'requested_action'].includes(key)) delete payload[key];
  }
  return payload;
}

/**
 * For events without an `action` (`push`): GitHub's example, preferring one sent to an app, with
 * the fake's state laid over it.
 */
export function buildActionlessPayload(event: string, ours: Record<string, unknown>): Record<string, unknown> {
  const group = allExamples().find((g) => g.name === event);
  const candidates = (group?.examples ?? []).filter((e) => !('action' in e));
  if (candidates.length === 0) throw new Error(`@octokit/webhooks-examples has no ${event} example`);
  const best = [...candidates].sort((a, b) => Number('installation' in b) - Number('installation' in a))[0]!;
  const example = structuredClone(best) as Record<string, unknown>;
  delete example.organization;
  return overlay(example, ours) as Record<string, unknown>;
}
