/**
 * Run events on AMQP: the durable topic exchange `task-mgmt.events`, routing key = event name
 * (`run.succeeded`…), so a consumer binds `run.*` for everything or one name for one kind. Bodies
 * are persistent JSON `{ event, at, run }` published on a confirm channel: `publish` resolves once
 * the broker has the message.
 *
 * The exchange is all this declares; consumers declare and bind their own queues (an event
 * published while no queue is bound is dropped by the broker, as topic exchanges do).
 *
 * A lost connection (broker restart) is recovered by amqplib with back-off; publishes wait for
 * it and are repeated, so an event may arrive twice: its `messageId` stays the same across
 * repeats for consumers that deduplicate.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ConfirmChannel, RecoveringChannelModel } from 'amqplib';
import type { Logger } from 'pino';
import { RetryableError } from '../../ports/errors.js';
import type { EventBus, RunEventName } from '../../ports/event-bus.js';
import { openConnection, withDeadline } from '../queue/rabbitmq-run-queue.js';

type Log = Pick<Logger, 'debug' | 'info' | 'warn' | 'error'>;

export interface AmqpEventPublisherOptions {
  /** amqp://user:password@host:5672/vhost */
  url: string;
  log: Log;
  /** The topic exchange. Default `task-mgmt.events`. */
  exchange?: string;
  /** How long a publish waits for a connection and the broker's confirm. Default 60 s. */
  publishTimeoutMs?: number;
  /** The clock stamped into `at`. */
  now?: () => Date;
}

export class AmqpEventPublisher implements EventBus {
  private readonly log: Log;
  private readonly exchange: string;
  private readonly publishTimeoutMs: number;
  private readonly now: () => Date;
  private readonly connection: Promise<RecoveringChannelModel>;
  private channel: Promise<ConfirmChannel> | null = null;
  private readonly pending = new Set<Promise<void>>();
  private closed = false;

  constructor(options: AmqpEventPublisherOptions) {
    this.log = options.log;
    this.exchange = options.exchange ?? 'task-mgmt.events';
    this.publishTimeoutMs = options.publishTimeoutMs ?? 60_000;
    this.now = options.now ?? (() => new Date());
    const name = `task-mgmt events ${hostname()}:${process.pid}`;
    this.connection = openConnection(options.url, name, this.log);
  }

  async publish(event: RunEventName, run: unknown): Promise<void> {
    if (this.closed) throw new Error('the AMQP event publisher is closed');
    const content = Buffer.from(JSON.stringify({ event, at: this.now().toISOString(), run }));
    const messageId = randomUUID();
    const publishing = this.publishConfirmed(event, content, messageId);
    this.pending.add(publishing);
    try {
      await publishing;
    } finally {
      this.pending.delete(publishing);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.allSettled([...this.pending]);
    this.channel = null;
    // Closes the channel too, and fails one still waiting for a connection.
    await this.connection.then((connection) => connection.close()).catch(() => undefined);
  }

  private confirmChannel(): Promise<ConfirmChannel> {
    if (this.channel) return this.channel;
    const opening: Promise<ConfirmChannel> = (async () => {
      const connection = await this.connection;
      // Waits while amqplib reconnects.
      const channel = await connection.createConfirmChannel();
      channel.on('error', (error: unknown) => this.log.warn({ err: error }, 'RabbitMQ event channel error'));
      channel.once('close', () => {
        if (this.channel === opening) this.channel = null;
      });
      await channel.assertExchange(this.exchange, 'topic', { durable: true });
      return channel;
    })();
    this.channel = opening;
    opening.catch(() => {
      if (this.channel === opening) this.channel = null;
    });
    return opening;
  }

  private async publishConfirmed(event: RunEventName, content: Buffer, messageId: string): Promise<void> {
    const deadline = Date.now() + this.publishTimeoutMs;
    for (let failures = 0; ; failures += 1) {
      try {
        await withDeadline(deadline, async () => {
          const channel = await this.confirmChannel();
          await new Promise<void>((resolve, reject) => {
            channel.publish(
              this.exchange,
              event,
              content,
              {
                persistent: true,
                contentType: 'application/json',
                type: event,
                messageId,
                appId: 'task-mgmt',
                timestamp: Math.floor(Date.now() / 1000),
              },
              (error: unknown) => (error ? reject(error instanceof Error ? error : new Error('the broker refused the event')) : resolve()),
            );
          });
        });
        return;
      } catch (error) {
        if (Date.now() >= deadline) {
          throw new RetryableError(`RabbitMQ did not confirm the ${event} event within ${this.publishTimeoutMs} ms`, { cause: error });
        }
        this.log.warn({ err: error, event }, 'publishing an event to RabbitMQ failed; trying again');
        await sleep(Math.min(5000, 100 * 2 ** failures));
      }
    }
  }
}
