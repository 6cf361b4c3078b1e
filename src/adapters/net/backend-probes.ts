/**
 * One connection attempt per backend, made and closed again, for the start-up check
 * (reach-backend.ts). Each gives up when its signal aborts and leaves nothing open.
 */
import { connect as amqpConnect } from 'amqplib';
import { Redis } from 'ioredis';
import pg from 'pg';

/** Connects to Redis, sends PING, and hangs up. No retries: the caller decides when to try again. */
export async function probeRedis(url: string, signal: AbortSignal): Promise<void> {
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => null });
  let lastError: Error | undefined;
  client.on('error', (error: Error) => (lastError = error));
  const hangUp = () => client.disconnect();
  signal.addEventListener('abort', hangUp, { once: true });
  try {
    await client.connect();
    await client.ping();
  } catch (error) {
    throw lastError ?? error;
  } finally {
    signal.removeEventListener('abort', hangUp);
    client.disconnect();
  }
}

/** Opens an AMQP connection (credentials and vhost checked by the broker) and closes it. */
export async function probeAmqp(url: string, signal: AbortSignal): Promise<void> {
  const opening = amqpConnect(url, { timeout: 5000 });
  signal.addEventListener('abort', () => void opening.then((connection) => connection.close()).catch(() => undefined), { once: true });
  const connection = await opening;
  await connection.close().catch(() => undefined);
}

/** Logs in to PostgreSQL and runs `select 1`. */
export async function probePostgres(url: string, signal: AbortSignal): Promise<void> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  client.on('error', () => undefined);
  const hangUp = () => void client.end().catch(() => undefined);
  signal.addEventListener('abort', hangUp, { once: true });
  try {
    await client.connect();
    await client.query('select 1');
  } finally {
    signal.removeEventListener('abort', hangUp);
    await client.end().catch(() => undefined);
  }
}

/** Any HTTP answer of Kubo's RPC API (`POST /api/v0/version`) shows it is there. */
export async function probeKubo(apiUrl: string, signal: AbortSignal): Promise<void> {
  const url = new URL(apiUrl);
  const headers: Record<string, string> = {};
  if (url.username !== '' || url.password !== '') {
    headers.authorization = `Basic ${Buffer.from(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`).toString('base64')}`;
    url.username = '';
    url.password = '';
  }
  const response = await fetch(new URL('api/v0/version', `${url.toString().replace(/\/+$/, '')}/`), { method: 'POST', headers, signal });
  await response.body?.cancel();
}
