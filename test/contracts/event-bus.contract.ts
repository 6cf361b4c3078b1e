/**
 * What every EventBus adapter must do (src/ports/event-bus.ts): deliver each event with its name
 * and the run as JSON, in the order published; let close() finish what is under way and be
 * called twice; refuse, clearly, to publish once closed.
 *
 * Each adapter brings a listener that sees what a consumer outside the app would see: for AMQP an
 * exclusive queue bound to the adapter's exchange, for the in-memory bus a subscription.
 */
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { EventBus, RunEventName } from '../../src/ports/event-bus.js';

export interface ReceivedEvent {
  name: string;
  run: unknown;
}

export interface OpenedEventBus {
  bus: EventBus;
  /** Starts listening to the events the bus publishes from now on; the array fills as they arrive. */
  listen(): Promise<ReceivedEvent[]>;
  cleanup(): Promise<void>;
}

const allEvents: RunEventName[] = ['run.queued', 'run.started', 'run.progress', 'run.succeeded', 'run.failed', 'run.cancelled', 'run.timed_out'];

const waitLong = { timeout: 5000, interval: 10 };

export function eventBusContract(name: string, open: () => Promise<OpenedEventBus>): void {
  describe(`EventBus contract: ${name}`, () => {
    let opened: OpenedEventBus;
    let bus: EventBus;

    beforeEach(async () => {
      opened = await open();
      ({ bus } = opened);
    });

    afterEach(async () => {
      await opened.cleanup();
    });

    it('delivers each event with its name and the run, in the order published', async () => {
      const received = await opened.listen();
      const runs = allEvents.map((event) => ({ id: randomUUID(), state: event.slice(4), outputs: [{ cid: 'QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o', size: 12 }], error: null }));
      for (const [index, event] of allEvents.entries()) await bus.publish(event, runs[index]);

      await vi.waitFor(() => expect(received).toHaveLength(allEvents.length), waitLong);
      expect(received).toStrictEqual(allEvents.map((event, index) => ({ name: event, run: runs[index] })));
    });

    it('carries the run as JSON: dates become ISO strings, later changes to the object do not travel', async () => {
      const received = await opened.listen();
      const run = { id: randomUUID(), queuedAt: new Date('2026-01-02T03:04:05.678Z'), note: 'ünïcödé ✓', nested: { list: [1, 'two', null] } };
      await bus.publish('run.queued', run);
      run.note = 'changed after publish';

      await vi.waitFor(() => expect(received).toHaveLength(1), waitLong);
      expect(received[0]).toStrictEqual({
        name: 'run.queued',
        run: { id: run.id, queuedAt: '2026-01-02T03:04:05.678Z', note: 'ünïcödé ✓', nested: { list: [1, 'two', null] } },
      });
    });

    it('delivers every publish of a burst sent at once', async () => {
      const received = await opened.listen();
      const ids = Array.from({ length: 50 }, () => randomUUID());
      await Promise.all(ids.map((id) => bus.publish('run.progress', { id })));

      await vi.waitFor(() => expect(received).toHaveLength(ids.length), waitLong);
      expect(received.map((event) => (event.run as { id: string }).id).sort()).toStrictEqual([...ids].sort());
    });

    it('finishes publishes under way when closed, and they are delivered', async () => {
      const received = await opened.listen();
      const publishes = [bus.publish('run.started', { id: 'a' }), bus.publish('run.succeeded', { id: 'a' })];
      await bus.close();
      await expect(Promise.all(publishes)).resolves.toBeDefined();
      await vi.waitFor(() => expect(received.map((event) => event.name)).toStrictEqual(['run.started', 'run.succeeded']), waitLong);
    });

    it('can be closed twice', async () => {
      await bus.publish('run.queued', { id: 'x' });
      await bus.close();
      await expect(bus.close()).resolves.toBeUndefined();
    });

    it('refuses to publish after close, saying it is closed, and delivers nothing', async () => {
      const received = await opened.listen();
      await bus.close();
      await expect(bus.publish('run.failed', { id: 'late' })).rejects.toThrow(/closed/);
      await bus.close();
      // Long enough for a stray delivery from a broker on this machine.
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(received).toStrictEqual([]);
    });
  });
}
