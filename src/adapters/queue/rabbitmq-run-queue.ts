/**
 * RabbitMQ over AMQP 0-9-1, so a worker in any language can take runs. Runs travel as persistent
 * JSON messages (`{"runId": "…"}`, content type application/json, message id = run id) on a
 * durable quorum queue, published on a confirm channel; a message is acked only after the handler
 * resolved, and the handler records the outcome in the run store before it resolves.
 *
 * Topology, for queue `q` (default `task-mgmt.runs`) and exchange prefix `p` (default `q`):
 * - `q`: durable quorum queue; `x-dead-letter-exchange: p.dead`, `x-delivery-limit` (a message
 *   handed out that many times without an ack, because its worker died or timed out, is
 *   dead-lettered instead of crash-looping), `x-consumer-timeout` above the longest task
 *   (https://www.rabbitmq.com/docs/consumers#acknowledgement-timeout: the broker's 30-minute
 *   default would close the channel under a long task and redeliver it mid-run).
 * - `p.dead`: durable fanout exchange, bound to the durable queue `q.dead`. Messages that are not
 *   run messages, that exceeded the delivery limit, or whose run kept failing with retryable
 *   errors end there for an operator to look at.
 * - `q.retry.<ms>`: one durable queue per delay, `x-message-ttl: <ms>`, dead-lettering back to `q`
 *   through the default exchange; `x-expires` removes it once it has sat unused. One queue per
 *   delay because RabbitMQ only expires messages at the head of a queue: mixing TTLs in one queue
 *   would hold a short retry behind a long one (https://www.rabbitmq.com/docs/ttl#per-message-ttl-caveats).
 * - `p.cancel`: durable fanout exchange; every consumer binds an exclusive, auto-deleted queue
 *   to it, and the one holding the run aborts its signal.
 *
 * The queue does not deduplicate: a run enqueued twice is delivered twice, and the handler's
 * queued → running move in the run store makes the second delivery a no-op. Publishes retried
 * after a dropped connection can duplicate a message for the same reason, harmlessly.
 *
 * Connection loss (a broker restart): amqplib's opt-in recovery reconnects with back-off; the
 * consumer and publisher channels are reopened on the new connection and redeclare the topology.
 * Messages unacked on the old connection go back to the queue; a handler still running from
 * before the drop finishes, but its ack is skipped since the broker has already requeued the
 * message. Publishes wait for the connection (up to `publishTimeoutMs`).
 *
 * RabbitMQ before 3.12 ignores `x-consumer-timeout`; there set `consumer_timeout` in
 * rabbitmq.conf instead.
 */
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect, type Channel, type ConfirmChannel, type ConsumeMessage, type Options, type RecoveringChannelModel } from 'amqplib';
import type { Logger } from 'pino';
import { DeferredError, QueueUnavailableError, RetryableError } from '../../ports/errors.js';
import { emitsWithin, hidePassword, RECONNECT_GRACE_MS } from '../net/reach-backend.js';
import { runMessageSchema, type RunMessage } from '../../core/runs/run.js';
import type { RunHandler, RunQueue } from '../../ports/run-queue.js';

type Log = Pick<Logger, 'debug' | 'info' | 'warn' | 'error'>;

export interface RabbitmqRunQueueOptions {
  /** amqp://user:password@host:5672/vhost */
  url: string;
  log: Log;
  /** The durable queue runs travel on. Default `task-mgmt.runs`. */
  queueName?: string;
  /** Prefix of the `.dead` and `.cancel` exchanges. Default: the queue name. */
  exchangePrefix?: string;
  /** `x-consumer-timeout` of the queue: must exceed the longest task. Default 7 days. */
  consumerTimeoutMs?: number;
  /** `x-delivery-limit`: deliveries without an ack before a message is dead-lettered. Default 5. */
  deliveryLimit?: number;
  /** Handler calls ending in a RetryableError before the message is dead-lettered. Default 20. */
  maxAttempts?: number;
  /** How long `close()` waits for running handlers. Default 30 s. */
  closeTimeoutMs?: number;
  /** How long a publish waits for a connection and the broker's confirm. Default 60 s. */
  publishTimeoutMs?: number;
  /**
   * How long an enqueue or a cancel waits for the broker (CONNECT_TIMEOUT). While the connection
   * is lost they fail with a QueueUnavailableError unless it comes back within two seconds; only a
   * first connection is waited for this long. Default: publishTimeoutMs.
   */
  producerTimeoutMs?: number;
}

/** Counts RetryableError failures; carried from one republished copy of a message to the next. */
export const attemptsHeader = 'task-mgmt-attempts';

const retryBaseDelayMs = 2000;
const retryMaxDelayMs = 15 * 60_000;

/** A RetryableError's own wait wins (a GitHub Retry-After); otherwise 2 s, doubling, capped. */
export function retryDelayMs(attempts: number, error: unknown): number {
  if (error instanceof RetryableError && error.retryAfterMs !== undefined) return Math.max(0, error.retryAfterMs);
  return Math.min(retryMaxDelayMs, Math.round(retryBaseDelayMs * 2 ** Math.max(0, attempts - 1)));
}

/**
 * The delay rounded up to two significant digits (300 → 300, 12,345 → 13,000), so arbitrary
 * waits share a bounded set of retry queues and none fires more than 10% late.
 */
export function retryBucketMs(delayMs: number): number {
  const ms = Math.max(1, Math.ceil(delayMs));
  const step = 10 ** Math.max(0, Math.floor(Math.log10(ms)) - 1);
  return Math.ceil(ms / step) * step;
}

interface Running {
  runId: string;
  controller: AbortController;
  done: Promise<void>;
}

interface Consumer {
  channel: Channel;
  consumerTag: string;
}

export class RabbitmqRunQueue implements RunQueue {
  private readonly log: Log;
  private readonly queueName: string;
  private readonly deadExchange: string;
  private readonly deadQueue: string;
  private readonly cancelExchange: string;
  private readonly consumerTimeoutMs: number;
  private readonly deliveryLimit: number;
  private readonly maxAttempts: number;
  private readonly closeTimeoutMs: number;
  private readonly publishTimeoutMs: number;
  private readonly producerTimeoutMs: number;
  private readonly url: string;
  private readonly connection: Promise<RecoveringChannelModel>;
  private publisher: Promise<ConfirmChannel> | null = null;
  private handler: RunHandler | null = null;
  private concurrency = 1;
  private consumer: Consumer | null = null;
  private reopenTimer: NodeJS.Timeout | null = null;
  private reopenFailures = 0;
  /** Channels that closed: acks on them would fail, the broker has requeued their messages. */
  private readonly deadChannels = new WeakSet<Channel>();
  private readonly running = new Set<Running>();
  /** No new runs, enqueues or cancels; running handlers may still finish. */
  private closed = false;
  /** The connection is closed too: nothing can be published any more. */
  private disconnected = false;

  constructor(options: RabbitmqRunQueueOptions) {
    this.log = options.log;
    this.queueName = options.queueName ?? 'task-mgmt.runs';
    const prefix = options.exchangePrefix ?? this.queueName;
    this.deadExchange = `${prefix}.dead`;
    this.deadQueue = `${this.queueName}.dead`;
    this.cancelExchange = `${prefix}.cancel`;
    this.consumerTimeoutMs = options.consumerTimeoutMs ?? 7 * 24 * 3_600_000;
    this.deliveryLimit = options.deliveryLimit ?? 5;
    this.maxAttempts = options.maxAttempts ?? 20;
    this.closeTimeoutMs = options.closeTimeoutMs ?? 30_000;
    this.publishTimeoutMs = options.publishTimeoutMs ?? 60_000;
    this.producerTimeoutMs = options.producerTimeoutMs ?? this.publishTimeoutMs;
    this.url = options.url;
    for (const [name, value] of Object.entries({
      consumerTimeoutMs: this.consumerTimeoutMs,
      deliveryLimit: this.deliveryLimit,
      maxAttempts: this.maxAttempts,
    })) {
      if (!Number.isInteger(value) || value < 1) throw new Error(`RabbitmqRunQueue: ${name} must be a positive integer, got ${value}`);
    }
    this.connection = openConnection(options.url, `task-mgmt ${this.queueName} ${hostname()}:${process.pid}`, this.log);
  }

  async enqueue(message: RunMessage): Promise<void> {
    if (this.closed) throw new Error('the RabbitMQ run queue is closed');
    const parsed = runMessageSchema.parse(message);
    await this.produce(`queue run ${parsed.runId}`, () => this.publish('', this.queueName, parsed, { headers: { [attemptsHeader]: 0 }, timeoutMs: this.producerTimeoutMs }));
  }

  /**
   * A producer's publish: refused at once while the connection is lost (the request that enqueues
   * says so instead of waiting for the broker), and given up after producerTimeoutMs.
   */
  private async produce(what: string, publish: () => Promise<void>): Promise<void> {
    // The broker's address stays in the log (the cause): this line may be shown on a pull request.
    const unavailable = (cause: unknown) => new QueueUnavailableError(`the run queue (RabbitMQ) is not answering, so it could not ${what}; try again later`, { cause });
    const connection = await this.connection.catch((error: unknown) => {
      throw unavailable(error);
    });
    const state = connectionStates.get(connection);
    // A lost connection is waited for only briefly (a broker restarting), then the request is told.
    if (state?.kind === 'lost' && !(await emitsWithin(connection, 'connect', Math.min(RECONNECT_GRACE_MS, this.producerTimeoutMs)))) {
      throw unavailable(new Error(`${state.reason} (${hidePassword(this.url)})`));
    }
    try {
      await publish();
    } catch (error) {
      if (this.disconnected) throw error;
      throw unavailable(error);
    }
  }

  async consume(handler: RunHandler, options: { concurrency: number }): Promise<void> {
    if (this.handler) throw new Error('this queue is already consuming');
    if (this.closed) throw new Error('the RabbitMQ run queue is closed');
    if (!Number.isInteger(options.concurrency) || options.concurrency < 1) {
      throw new Error(`concurrency must be a positive integer, got ${options.concurrency}`);
    }
    this.handler = handler;
    this.concurrency = options.concurrency;
    // A misconfigured broker (say, the queue exists with other arguments) fails here, at start-up.
    await this.openConsumer();
  }

  async cancel(runId: string): Promise<void> {
    if (this.closed) throw new Error('the RabbitMQ run queue is closed');
    // Runs still waiting in the queue are cancelled in the store; the worker skips them.
    await this.produce(`tell the workers to cancel run ${runId}`, () =>
      this.publish(this.cancelExchange, '', { runId }, { persistent: false, expiration: 60_000, timeoutMs: this.producerTimeoutMs }),
    );
  }

  async depth(): Promise<number> {
    const { messageCount } = await (await this.publisherChannel()).checkQueue(this.queueName);
    return messageCount;
  }

  /** While consuming: whether the consumer channel is open (it is reopened after a lost connection). */
  connected(): boolean {
    if (this.closed) return false;
    return this.handler ? this.consumer !== null : !this.disconnected;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.reopenTimer) clearTimeout(this.reopenTimer);
    const consumer = this.consumer;
    if (consumer) await consumer.channel.cancel(consumer.consumerTag).catch(() => undefined);

    const settled = Promise.allSettled([...this.running].map((entry) => entry.done));
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      settled.then(() => false),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), this.closeTimeoutMs))),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      // Their messages go back to the queue when the channel closes; the run store's lease
      // tells whoever takes them next whether the run is still going.
      this.log.warn({ runIds: [...this.running].map((entry) => entry.runId) }, 'closing the RabbitMQ queue with runs still going');
    }

    this.consumer = null;
    this.publisher = null;
    this.disconnected = true;
    await consumer?.channel.close().catch(() => undefined);
    // Closes the publisher channel too, and fails a channel still waiting for a connection:
    // awaiting that one first would wait for a broker that may never come back.
    await this.connection.then((connection) => connection.close()).catch(() => undefined);
  }

  /** Declares everything this queue uses; idempotent, so every (re)opened channel does it. */
  private async assertTopology(channel: Channel): Promise<void> {
    await channel.assertExchange(this.deadExchange, 'fanout', { durable: true });
    await channel.assertQueue(this.deadQueue, { durable: true });
    await channel.bindQueue(this.deadQueue, this.deadExchange, '');
    await channel.assertQueue(this.queueName, {
      durable: true,
      arguments: {
        'x-queue-type': 'quorum',
        'x-dead-letter-exchange': this.deadExchange,
        'x-delivery-limit': this.deliveryLimit,
        'x-consumer-timeout': this.consumerTimeoutMs,
      },
    });
    await channel.assertExchange(this.cancelExchange, 'fanout', { durable: true });
  }

  /** The retry queue for a delay, declared on every use: that also resets its `x-expires`. */
  private async assertRetryQueue(channel: Channel, delayMs: number): Promise<string> {
    const name = `${this.queueName}.retry.${delayMs}`;
    await channel.assertQueue(name, {
      durable: true,
      arguments: {
        'x-message-ttl': delayMs,
        'x-dead-letter-exchange': '',
        'x-dead-letter-routing-key': this.queueName,
        // Only unused time counts, and a message waiting inside does not make it used: keep the
        // queue well past the TTL of the last message put in.
        'x-expires': delayMs + 10 * 60_000,
      },
    });
    return name;
  }

  private publisherChannel(): Promise<ConfirmChannel> {
    if (this.publisher) return this.publisher;
    const opening: Promise<ConfirmChannel> = (async () => {
      const connection = await this.connection;
      // Waits while amqplib reconnects.
      const channel = await connection.createConfirmChannel();
      channel.on('error', (error: unknown) => this.log.warn({ err: error }, 'RabbitMQ publisher channel error'));
      channel.once('close', () => {
        this.deadChannels.add(channel);
        if (this.publisher === opening) this.publisher = null;
      });
      await this.assertTopology(channel);
      return channel;
    })();
    this.publisher = opening;
    opening.catch(() => {
      if (this.publisher === opening) this.publisher = null;
    });
    return opening;
  }

  /**
   * Publishes persistent JSON and waits for the broker's confirm. A connection lost on the way is
   * waited out and the publish repeated, until `publishTimeoutMs` has passed.
   */
  private async publish(
    exchange: string,
    routingKey: string,
    body: RunMessage,
    /**
     * `route` picks the routing key once the channel is open, e.g. after declaring a queue;
     * `timeoutMs` replaces publishTimeoutMs.
     */
    extra: Options.Publish & { route?: (channel: ConfirmChannel) => Promise<string>; timeoutMs?: number } = {},
  ): Promise<void> {
    const { route, timeoutMs = this.publishTimeoutMs, ...properties } = extra;
    const content = Buffer.from(JSON.stringify(body));
    const deadline = Date.now() + timeoutMs;
    for (let failures = 0; ; failures += 1) {
      try {
        await withDeadline(deadline, async () => {
          const channel = await this.publisherChannel();
          const target = route ? await route(channel) : routingKey;
          await new Promise<void>((resolve, reject) => {
            channel.publish(
              exchange,
              target,
              content,
              { persistent: true, contentType: 'application/json', messageId: body.runId, appId: 'task-mgmt', ...properties },
              (error: unknown) => (error ? reject(asError(error, 'the broker refused the message')) : resolve()),
            );
          });
        });
        return;
      } catch (error) {
        if (Date.now() >= deadline) {
          throw new RetryableError(`RabbitMQ did not confirm a message for run ${body.runId} within ${timeoutMs} ms`, { cause: error });
        }
        if (this.disconnected) throw error;
        this.log.warn({ err: error, runId: body.runId }, 'publishing to RabbitMQ failed; trying again');
        await sleep(Math.min(5000, 100 * 2 ** failures));
      }
    }
  }

  private async openConsumer(): Promise<void> {
    const connection = await this.connection;
    const channel = await connection.createChannel();
    let channelClosed = false;
    channel.on('error', (error: unknown) => this.log.warn({ err: error }, 'RabbitMQ consumer channel error'));
    channel.once('close', () => {
      channelClosed = true;
      this.deadChannels.add(channel);
      if (this.consumer?.channel !== channel) return;
      this.consumer = null;
      if (!this.closed) {
        this.log.warn('RabbitMQ consumer channel closed; reopening it');
        this.reopenConsumerLater();
      }
    });
    try {
      await this.assertTopology(channel);
      await channel.prefetch(this.concurrency);
      const cancels = await channel.assertQueue('', { exclusive: true, autoDelete: true, durable: false });
      await channel.bindQueue(cancels.queue, this.cancelExchange, '');
      await channel.consume(cancels.queue, (delivery) => delivery && this.onCancel(delivery), { noAck: true });
      const { consumerTag } = await channel.consume(
        this.queueName,
        (delivery) => {
          if (delivery) this.deliver(channel, delivery);
        },
        { noAck: false },
      );
      if (channelClosed) throw new Error('the RabbitMQ channel closed while the consumer was starting');
      if (this.closed) {
        await channel.close();
        return;
      }
      this.consumer = { channel, consumerTag };
      this.reopenFailures = 0;
    } catch (error) {
      await channel.close().catch(() => undefined);
      throw error;
    }
  }

  private reopenConsumerLater(): void {
    if (this.closed || this.reopenTimer) return;
    const delay = Math.min(10_000, 200 * 2 ** this.reopenFailures);
    this.reopenFailures += 1;
    this.reopenTimer = setTimeout(() => {
      this.reopenTimer = null;
      this.openConsumer().catch((error: unknown) => {
        this.log.warn({ err: error, retryInMs: delay }, 'could not reopen the RabbitMQ consumer');
        this.reopenConsumerLater();
      });
    }, delay);
  }

  private onCancel(delivery: ConsumeMessage): void {
    const parsed = runMessageSchema.safeParse(parseJson(delivery.content));
    if (!parsed.success) return;
    for (const entry of this.running) {
      if (entry.runId === parsed.data.runId) entry.controller.abort(new Error('cancelled'));
    }
  }

  private deliver(channel: Channel, delivery: ConsumeMessage): void {
    const parsed = runMessageSchema.safeParse(parseJson(delivery.content));
    if (!parsed.success) {
      this.log.error(
        { messageId: delivery.properties.messageId, deadLetterQueue: this.deadQueue, issues: parsed.error?.issues },
        'dead-lettering a message that is not a run message',
      );
      this.settle(channel, delivery, 'dead-letter');
      return;
    }
    if (this.closed) {
      this.settle(channel, delivery, 'requeue');
      return;
    }
    const message = parsed.data;
    const controller = new AbortController();
    const entry: Running = { runId: message.runId, controller, done: Promise.resolve() };
    this.running.add(entry);
    entry.done = this.handle(channel, delivery, message, controller.signal).finally(() => this.running.delete(entry));
  }

  private async handle(channel: Channel, delivery: ConsumeMessage, message: RunMessage, signal: AbortSignal): Promise<void> {
    const { runId } = message;
    const attempts = attemptsOf(delivery);
    try {
      await this.handler!(message, { signal });
    } catch (error) {
      if (error instanceof DeferredError) {
        // Waiting for a free slot is not an attempt.
        this.log.debug({ runId, retryInMs: error.retryAfterMs, reason: error.message }, 'run deferred');
        await this.retryLater(channel, delivery, message, attempts, error.retryAfterMs);
        return;
      }
      if (error instanceof RetryableError) {
        const made = attempts + 1;
        if (made >= this.maxAttempts) {
          this.log.error({ err: error, runId, attempts: made, deadLetterQueue: this.deadQueue }, 'run failed too often; dead-lettering it');
          this.settle(channel, delivery, 'dead-letter');
          return;
        }
        const delayMs = retryDelayMs(made, error);
        this.log.warn({ err: error, runId, attempts: made, retryInMs: delayMs }, 'run handler failed; retrying later');
        await this.retryLater(channel, delivery, message, made, delayMs);
        return;
      }
      // The handler records permanent failures on the run itself; the message is done.
      this.log.error({ err: error, runId }, 'run handler failed');
    }
    this.settle(channel, delivery, 'ack');
  }

  /** Puts a copy on the retry queue for the delay, then acks the original. */
  private async retryLater(channel: Channel, delivery: ConsumeMessage, message: RunMessage, attempts: number, delayMs: number): Promise<void> {
    const bucket = retryBucketMs(delayMs);
    try {
      await this.publish('', '', message, {
        headers: { [attemptsHeader]: attempts },
        route: (publisher) => this.assertRetryQueue(publisher, bucket),
      });
    } catch (error) {
      // Not acked: the broker gives the message back, now or when the channel closes.
      this.log.error({ err: error, runId: message.runId }, 'could not schedule a retry; handing the message back');
      this.settle(channel, delivery, 'requeue');
      return;
    }
    this.settle(channel, delivery, 'ack');
  }

  private settle(channel: Channel, delivery: ConsumeMessage, outcome: 'ack' | 'requeue' | 'dead-letter'): void {
    // After a reconnect the delivery tag means nothing on the new channel, and the broker has
    // already put the message back: a duplicate the run store turns into a no-op.
    if (this.deadChannels.has(channel)) return;
    try {
      if (outcome === 'ack') channel.ack(delivery);
      else channel.nack(delivery, false, outcome === 'requeue');
    } catch (error) {
      this.log.warn({ err: error, messageId: delivery.properties.messageId }, `could not ${outcome} a RabbitMQ message`);
    }
  }
}

/** Whether a connection opened by openConnection is up, or lost (and why) after it was up. */
type ConnectionState = { kind: 'connecting' } | { kind: 'up' } | { kind: 'lost'; reason: string };
const connectionStates = new WeakMap<RecoveringChannelModel, ConnectionState>();

/**
 * A recovering AMQP connection named for the broker's connection list, with its events logged:
 * reconnection attempts at warn (amqplib retries for ever, so an operator must see that it does).
 */
export function openConnection(url: string, name: string, log: Log): Promise<RecoveringChannelModel> {
  const opening = connect(url, {
    clientProperties: { connection_name: name },
    recovery: { waitForConnect: false, initialDelay: 200, maxDelay: 10_000, maxRetries: Infinity },
  }).then((connection) => {
    connectionStates.set(connection, { kind: 'connecting' });
    const lost = (error: Error) => {
      if (connectionStates.get(connection)?.kind !== 'connecting') connectionStates.set(connection, { kind: 'lost', reason: error.message || 'the connection closed' });
    };
    connection.on('connect', () => {
      connectionStates.set(connection, { kind: 'up' });
      log.info({ connection: name }, 'connected to RabbitMQ');
    });
    connection.on('disconnect', (error: Error) => {
      lost(error);
      log.warn({ err: error, connection: name }, 'lost the RabbitMQ connection; reconnecting');
    });
    connection.on('connect-failed', (error: Error) => {
      lost(error);
      log.warn({ err: error, connection: name }, 'could not connect to RabbitMQ; trying again');
    });
    connection.on('error', (error: Error) => log.warn({ err: error, connection: name }, 'RabbitMQ connection error'));
    return connection;
  });
  // Callers await it; this only keeps an early failure from being an unhandled rejection.
  opening.catch(() => undefined);
  return opening;
}

function attemptsOf(delivery: ConsumeMessage): number {
  const value = Number(delivery.properties.headers?.[attemptsHeader] ?? 0);
  return Number.isInteger(value) && value >= 0 ? value : 0;
}

function parseJson(content: Buffer): unknown {
  try {
    return JSON.parse(content.toString('utf8'));
  } catch {
    return undefined;
  }
}

function asError(error: unknown, fallback: string): Error {
  return error instanceof Error ? error : new Error(fallback, { cause: error });
}

/** Runs `work`, giving up with an error when the epoch-ms `deadline` passes first. */
export async function withDeadline<T>(deadline: number, work: () => Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      work(),
      new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => reject(new Error('deadline passed')), Math.max(0, deadline - Date.now()));
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
