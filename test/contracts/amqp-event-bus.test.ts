/**
 * AmqpEventPublisher against the EventBus contract on a real RabbitMQ (scripts/services-up.sh).
 * Each test gets its own exchange, and a listener on an exclusive queue bound to it with `#`;
 * the exchange is deleted afterwards. Broker-specific behaviour (routing keys, message
 * properties, reconnects, confirms that never come) is in amqp-event-publisher.test.ts.
 */
import { randomUUID } from 'node:crypto';
import { connect } from 'amqplib';
import { pino } from 'pino';
import { describe } from 'vitest';
import { AmqpEventPublisher } from '../../src/adapters/events/amqp-event-publisher.js';
import { requireServices } from '../support/services.js';
import { eventBusContract, type ReceivedEvent } from './event-bus.contract.js';

const url = 'amqp://guest:guest@127.0.0.1:5672';
const log = pino({ level: 'silent' });
const rabbitmqReady = await requireServices('rabbitmq');

describe.skipIf(!rabbitmqReady)('RabbitMQ', () => {
  eventBusContract('AmqpEventPublisher', async () => {
    const exchange = `task-mgmt-test-events-${randomUUID()}`;
    const client = await connect(url);
    const channel = await client.createChannel();
    const bus = new AmqpEventPublisher({ url, log, exchange });
    return {
      bus,
      listen: async () => {
        const received: ReceivedEvent[] = [];
        await channel.assertExchange(exchange, 'topic', { durable: true });
        const { queue } = await channel.assertQueue('', { exclusive: true, autoDelete: true });
        await channel.bindQueue(queue, exchange, '#');
        await channel.consume(
          queue,
          (message) => {
            if (!message) return;
            const body = JSON.parse(message.content.toString()) as { event: string; run: unknown };
            received.push({ name: message.fields.routingKey, run: body.run });
          },
          { noAck: true },
        );
        return received;
      },
      cleanup: async () => {
        await bus.close();
        await channel.deleteExchange(exchange);
        await client.close();
      },
    };
  });
});
