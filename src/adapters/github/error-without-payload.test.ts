import { Writable } from 'node:stream';
import { pino } from 'pino';
import { Probot } from 'probot';
import { describe, expect, it } from 'vitest';
import { serializeErrorWithoutPayload } from './error-without-payload.js';

const marker = 'stranger-payload-';

/** A Probot whose log lines are collected, with the serializer the app's logger uses. */
async function probotWithLog(): Promise<{ probot: Probot; lines: () => string[] }> {
  let text = '';
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      text += chunk.toString();
      done();
    },
  });
  const log = pino({ level: 'debug', serializers: { err: serializeErrorWithoutPayload } }, stream);
  const probot = new Probot({ githubToken: 'not-used', secret: 'right', log });
  await probot.ready();
  return { probot, lines: () => text.split('\n').filter((line) => line.length > 0) };
}

describe('serializeErrorWithoutPayload', () => {
  it('a wrong signature is logged with the delivery id, event name and size, never the payload', async () => {
    const { probot, lines } = await probotWithLog();
    const payload = JSON.stringify({ action: 'created', filler: marker.repeat(10_000) });
    await expect(
      probot.webhooks.verifyAndReceive({ id: 'delivery-1', name: 'issue_comment', payload, signature: `sha256=${'0'.repeat(64)}` }),
    ).rejects.toThrow(/signature does not match/);
    expect(lines().length).toBeGreaterThan(0);
    expect(lines().join('\n')).not.toContain(marker);
    const logged = lines().map((line) => JSON.parse(line) as { err?: { event?: unknown } });
    expect(logged.find((line) => line.err?.event)?.err?.event).toEqual({ id: 'delivery-1', name: 'issue_comment', bytes: Buffer.byteLength(payload) });
  });

  it('a wrong signature is a refusal: logged in one short line, without the verifier\'s stacks', async () => {
    const { probot, lines } = await probotWithLog();
    await expect(
      probot.webhooks.verifyAndReceive({ id: 'delivery-3', name: 'issue_comment', payload: '{}', signature: `sha256=${'0'.repeat(64)}` }),
    ).rejects.toThrow(/signature does not match/);
    expect(lines().length).toBeGreaterThan(0);
    for (const line of lines()) {
      expect(line.length, line).toBeLessThan(1024);
      expect(line).not.toContain('"stack"');
    }
  });

  it('a failing handler is logged without the (signed) payload it was given', async () => {
    const { probot, lines } = await probotWithLog();
    probot.on('issue_comment', () => {
      throw new Error('the store is down');
    });
    await expect(
      probot.webhooks.receive({ id: 'delivery-2', name: 'issue_comment', payload: { action: 'created', filler: marker } as never }),
    ).rejects.toThrow(/the store is down/);
    const text = lines().join('\n');
    expect(text).toContain('the store is down');
    expect(text).toContain('delivery-2');
    expect(text).not.toContain(marker);
    // The app's own fault keeps its stack.
    expect(text).toContain('"stack"');
  });

  it('leaves other errors as pino would log them', () => {
    const error = Object.assign(new Error('plain'), { code: 'E_PLAIN' });
    expect(serializeErrorWithoutPayload(error)).toMatchObject({ type: 'Error', message: 'plain', code: 'E_PLAIN' });
    expect(serializeErrorWithoutPayload('not an error')).toBe('not an error');
  });
});
