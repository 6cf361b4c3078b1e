/**
 * EventBus in this process: keeps every published event, in order, and tells subscribers at
 * once. It stands in for AMQP in fast tests of the command flow and in single-process setups
 * where nothing outside listens. Bodies are stored as the JSON a broker would carry, so a
 * subscriber sees exactly what an AMQP consumer would (dates as ISO strings, no shared objects).
 */
import type { EventBus, RunEventName } from '../../ports/event-bus.js';

export interface PublishedEvent {
  name: RunEventName;
  /** The run as JSON: what `JSON.parse(JSON.stringify(run))` gives. */
  run: unknown;
  at: Date;
}

export type EventListener = (event: PublishedEvent) => void;

export class MemoryEventBus implements EventBus {
  readonly #events: PublishedEvent[] = [];
  readonly #listeners = new Set<EventListener>();
  readonly #now: () => Date;
  #closed = false;

  constructor(options: { now?: () => Date } = {}) {
    this.#now = options.now ?? (() => new Date());
  }

  /** Every event published so far, oldest first. */
  get events(): readonly PublishedEvent[] {
    return [...this.#events];
  }

  /**
   * Calls `listener` with each event published from now on, in order, before `publish` resolves.
   * A listener that throws fails that publish (the event stays recorded), so a test's own mistake
   * shows up where it happened. Returns a function that unsubscribes.
   */
  subscribe(listener: EventListener): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  async publish(name: RunEventName, run: unknown): Promise<void> {
    if (this.#closed) throw new Error(`the in-memory event bus is closed; ${name} was not published`);
    const event: PublishedEvent = { name, run: asJson(run), at: this.#now() };
    this.#events.push(event);
    for (const listener of [...this.#listeners]) listener(event);
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#listeners.clear();
  }
}

/** The value a JSON consumer would read back; `undefined` when JSON has no text for it. */
function asJson(value: unknown): unknown {
  const text = JSON.stringify(value);
  return text === undefined ? undefined : JSON.parse(text);
}
