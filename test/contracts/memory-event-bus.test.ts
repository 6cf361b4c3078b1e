/** MemoryEventBus against the EventBus contract, plus what tests that use it rely on. */
import { describe, expect, it } from 'vitest';
import { MemoryEventBus } from '../../src/adapters/local/memory-event-bus.js';
import { eventBusContract, type ReceivedEvent } from './event-bus.contract.js';

eventBusContract('MemoryEventBus', async () => {
  const bus = new MemoryEventBus();
  return {
    bus,
    listen: async () => {
      const received: ReceivedEvent[] = [];
      bus.subscribe(({ name, run }) => received.push({ name, run }));
      return received;
    },
    cleanup: () => bus.close(),
  };
});

describe('MemoryEventBus', () => {
  it('keeps every event with the time it was published, and stops telling a listener that unsubscribed', async () => {
    const at = new Date('2026-03-04T05:06:07.000Z');
    const bus = new MemoryEventBus({ now: () => at });
    const seen: string[] = [];
    const unsubscribe = bus.subscribe((event) => seen.push(event.name));
    await bus.publish('run.queued', { id: 'a' });
    unsubscribe();
    await bus.publish('run.started', { id: 'a' });
    expect(seen).toStrictEqual(['run.queued']);
    expect(bus.events).toStrictEqual([
      { name: 'run.queued', run: { id: 'a' }, at },
      { name: 'run.started', run: { id: 'a' }, at },
    ]);
  });

  it('fails the publish whose listener throws, keeping the event', async () => {
    const bus = new MemoryEventBus();
    bus.subscribe(() => {
      throw new Error('listener broke');
    });
    await expect(bus.publish('run.failed', { id: 'b' })).rejects.toThrow('listener broke');
    expect(bus.events.map((event) => event.name)).toStrictEqual(['run.failed']);
  });
});
