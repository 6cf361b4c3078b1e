/** PostgresRunStore against the RunStore contract: a fresh schema per test on the machine's server. */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { describe } from 'vitest';
import { PostgresRunStore } from '../../src/adapters/store/postgres-run-store.js';
import { requireServices } from '../support/services.js';
import { runStoreContract } from './run-store.contract.js';

const url = process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const ready = await requireServices('postgres');

async function admin<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

describe.skipIf(!ready)('PostgreSQL', () => {
  runStoreContract('PostgresRunStore', async () => {
    const schema = `task_mgmt_test_${randomUUID().replace(/-/g, '').slice(0, 16)}`;
    await admin((client) => client.query(`CREATE SCHEMA ${schema}`));
    const store = await PostgresRunStore.open(url, { schema });
    return {
      store,
      cleanup: async () => {
        await store.close();
        await admin((client) => client.query(`DROP SCHEMA ${schema} CASCADE`));
      },
    };
  });
});
