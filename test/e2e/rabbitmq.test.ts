/**
 * RabbitMQ end to end: runs travel on `<prefix>.runs` and every state change is published on the
 * `task-mgmt.events` topic exchange, with the run record as JSON.
 */
import { randomUUID } from 'node:crypto';
import { connect, type Channel, type ChannelModel } from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeGitHub } from '../fake-github/index.js';
import { requireServices } from '../support/services.js';
import { startApp, type AppProcess } from '../support/app-process.js';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { eventJsonSchema } from '../../src/adapters/events/schemas.js';

const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => Ajv2020;

const ready = (await requireServices('docker')) && (await requireServices('rabbitmq'));
const amqpUrl = 'amqp://guest:guest@127.0.0.1:5672';

describe.skipIf(!ready)('RabbitMQ queue and AMQP events', () => {
  const prefix = `task-mgmt-test-${randomUUID().slice(0, 8)}`;
  let gh: FakeGitHub;
  let app: AppProcess;
  let connection: ChannelModel;
  let channel: Channel;
  const events: { key: string; body: { event: string; run: { id: string; state: string; output_cid: string | null } } }[] = [];

  beforeAll(async () => {
    connection = await connect(amqpUrl);
    channel = await connection.createChannel();
    await channel.assertExchange('task-mgmt.events', 'topic', { durable: true });
    const { queue } = await channel.assertQueue('', { exclusive: true, autoDelete: true });
    await channel.bindQueue(queue, 'task-mgmt.events', 'run.*');
    await channel.consume(queue, (message) => {
      if (message) events.push({ key: message.fields.routingKey, body: JSON.parse(message.content.toString()) });
    }, { noAck: true });
    gh = await FakeGitHub.start();
    app = await startApp(gh, { QUEUE_URL: amqpUrl, QUEUE_PREFIX: prefix, EVENTS_URL: amqpUrl, PROGRESS_INTERVAL: '1s' });
  });

  afterAll(async () => {
    await app?.stop();
    await gh?.close();
    if (channel) {
      for (const queue of [`${prefix}.runs`, `${prefix}.runs.dead`]) await channel.deleteQueue(queue).catch(() => undefined);
      for (const exchange of [`${prefix}.runs.dead`, `${prefix}.runs.cancel`]) await channel.deleteExchange(exchange).catch(() => undefined);
      await connection.close();
    }
  });

  it('runs a /run through the broker and publishes run.queued, run.started and run.succeeded', async () => {
    const repo = await gh.createRepo({ owner: 'octo-org', name: `amqp-${randomUUID().slice(0, 8)}`, files: { Dockerfile: 'FROM busybox\nCMD printf \'{"done": 1, "total": 2}\' > /out/.progress.json && sleep 4 && printf "hello world\\n" > /out/hello.txt\n' } });
    gh.setRole(repo, 'maintainer', 'maintain');
    const number = gh.createIssue(repo, { author: 'maintainer', title: 'archive' });
    await gh.comment(repo, number, 'maintainer', '/run');
    const check = await gh.waitFor(() => gh.checkRuns(repo).find((c) => c.status === 'completed'), {
      timeoutMs: 60_000,
      message: `the run did not finish\n${app.output().slice(-3000)}`,
    });
    expect(check.conclusion).toBe('success');
    const mine = await gh.waitFor(
      () => {
        const list = events.filter((e) => e.body.run.id === check.externalId);
        return list.some((e) => e.key === 'run.succeeded') ? list : undefined;
      },
      { timeoutMs: 10_000, message: `events: ${JSON.stringify(events.map((e) => e.key))}` },
    );
    expect(mine.map((e) => e.key).filter((key) => key !== 'run.progress')).toEqual(['run.queued', 'run.started', 'run.succeeded']);
    // Every event matches the JSON Schema `task-mgmt schema event` prints.
    const validate = new Ajv2020({ strict: false, allErrors: true });
    addFormats(validate);
    const matchesSchema = validate.compile(eventJsonSchema() as object);
    for (const event of mine) expect(matchesSchema(event.body), JSON.stringify(matchesSchema.errors)).toBe(true);
    const progress = mine.find((e) => e.key === 'run.progress');
    expect(progress?.body.run).toMatchObject({ state: 'running', progress: { done: 1, total: 2 } });
    expect(mine.every((e) => e.body.event === e.key)).toBe(true);
    expect(mine.find((e) => e.key === 'run.succeeded')!.body.run.output_cid).toMatch(/^Qm/);
  });
});
