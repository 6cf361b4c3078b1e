/**
 * AmqpEventPublisher on a real RabbitMQ (scripts/services-up.sh): consumers bound by routing key
 * get the JSON events. Each test uses its own exchange and deletes it afterwards; the connection
 * drop uses the broker's `rabbitmqctl`.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import { connect, type Channel, type ChannelModel, type ConsumeMessage } from 'amqplib';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { AmqpEventPublisher } from '../../src/adapters/events/amqp-event-publisher.js';
import { RetryableError } from '../../src/ports/errors.js';
import { requireServices } from '../support/services.js';

const url = 'amqp://guest:guest@127.0.0.1:5672';
const log = pino({ level: 'silent' });

/** A logger that keeps each message, to wait for what the publisher reports. */
function recordingLog(): { log: pino.Logger; messages: string[] } {
  const messages: string[] = [];
  return { log: pino({ level: 'debug' }, { write: (line: string) => messages.push(String(JSON.parse(line).msg)) }), messages };
}
const exec = promisify(execFile);

async function rabbitmqctl(...args: string[]): Promise<string> {
  const { stdout } = await exec('rabbitmqctl', ['-q', ...args], { timeout: 30_000 });
  return stdout;
}

const rabbitmqctlWorks = await rabbitmqctl('status')
  .then(() => true)
  .catch(() => false);

const rabbitmqReady = await requireServices('rabbitmq');

describe.skipIf(!rabbitmqReady)('AmqpEventPublisher on RabbitMQ', () => {
  let client: ChannelModel;
  let channel: Channel;
  let exchange: string;
  let publisher: AmqpEventPublisher;

  /** An exclusive queue bound to the test's exchange with `pattern`, collecting what arrives. */
  async function subscribe(pattern: string): Promise<ConsumeMessage[]> {
    const received: ConsumeMessage[] = [];
    await channel.assertExchange(exchange, 'topic', { durable: true });
    const { queue } = await channel.assertQueue('', { exclusive: true, autoDelete: true });
    await channel.bindQueue(queue, exchange, pattern);
    await channel.consume(queue, (message) => message && received.push(message), { noAck: true });
    return received;
  }

  beforeAll(async () => {
    client = await connect(url);
    channel = await client.createChannel();
  });

  afterAll(async () => {
    await client.close();
  });

  afterEach(async () => {
    await publisher.close();
    await channel.deleteExchange(exchange);
  });

  it('delivers run.succeeded with its JSON body to a consumer bound with run.*', async () => {
    exchange = `task-mgmt-test-events-${randomUUID()}`;
    const at = new Date('2026-01-02T03:04:05.000Z');
    publisher = new AmqpEventPublisher({ url, log, exchange, now: () => at });
    const received = await subscribe('run.*');
    const run = { id: randomUUID(), state: 'succeeded', repo: { owner: 'octo', name: 'archive' }, outputs: [{ cid: 'QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o' }] };

    await publisher.publish('run.succeeded', run);

    await vi.waitFor(() => expect(received).toHaveLength(1), { timeout: 5000, interval: 20 });
    const [message] = received;
    expect(message!.fields.routingKey).toBe('run.succeeded');
    expect(message!.properties).toMatchObject({ contentType: 'application/json', deliveryMode: 2, type: 'run.succeeded' });
    expect(JSON.parse(message!.content.toString())).toStrictEqual({ event: 'run.succeeded', at: at.toISOString(), run });
  });

  it('routes by event name', async () => {
    exchange = `task-mgmt-test-events-${randomUUID()}`;
    publisher = new AmqpEventPublisher({ url, log, exchange });
    const failures = await subscribe('run.failed');
    const everything = await subscribe('#');

    await publisher.publish('run.started', { id: 'a' });
    await publisher.publish('run.failed', { id: 'a' });
    await publisher.publish('run.timed_out', { id: 'b' });

    await vi.waitFor(() => expect(everything).toHaveLength(3), { timeout: 5000, interval: 20 });
    expect(everything.map((message) => message.fields.routingKey)).toStrictEqual(['run.started', 'run.failed', 'run.timed_out']);
    expect(failures.map((message) => JSON.parse(message.content.toString()).run)).toStrictEqual([{ id: 'a' }]);
  });

  it.skipIf(!rabbitmqctlWorks)('publishes again after the broker drops its connection', async () => {
    exchange = `task-mgmt-test-events-${randomUUID()}`;
    const recording = recordingLog();
    publisher = new AmqpEventPublisher({ url, log: recording.log, exchange });
    const received = await subscribe('run.*');
    await publisher.publish('run.queued', { id: 'before' });

    const lines = (await rabbitmqctl('list_connections', '--no-table-headers', 'pid', 'client_properties')).split('\n');
    const ours = lines.filter((line) => line.includes('{"connection_name","task-mgmt events ') && line.includes(`:${process.pid}"}`));
    expect(ours).toHaveLength(1);
    await rabbitmqctl('close_connection', ours[0]!.split('\t')[0]!.trim(), 'test: simulated broker restart');
    // Publish while the publisher is between connections.
    await vi.waitFor(() => expect(recording.messages).toContain('lost the RabbitMQ connection; reconnecting'), { timeout: 5000, interval: 10 });

    await publisher.publish('run.started', { id: 'after' });
    await vi.waitFor(() => expect(received.map((message) => message.fields.routingKey)).toStrictEqual(['run.queued', 'run.started']), {
      timeout: 5000,
      interval: 20,
    });
  });

  it('gives up on an event no broker confirms within publishTimeoutMs, with a RetryableError', async () => {
    exchange = `task-mgmt-test-events-${randomUUID()}`;
    // Nothing listens on port 1: every connection attempt is refused.
    publisher = new AmqpEventPublisher({ url: 'amqp://guest:guest@127.0.0.1:1', log, exchange, publishTimeoutMs: 500 });
    await expect(publisher.publish('run.queued', { id: 'x' })).rejects.toBeInstanceOf(RetryableError);
  });

  it('refuses to publish after close', async () => {
    exchange = `task-mgmt-test-events-${randomUUID()}`;
    publisher = new AmqpEventPublisher({ url, log, exchange });
    await publisher.publish('run.queued', { id: 'x' });
    await publisher.close();
    await expect(publisher.publish('run.started', { id: 'x' })).rejects.toThrow(/closed/);
  });
});
