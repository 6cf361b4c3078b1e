/** PostgresRunStore against the RunStore contract: a fresh schema per test on the machine's server. */
import { randomUUID } from 'node:crypto';
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { afterEach, beforeEach, describe, it } from 'vitest';
import { PostgresRunStore } from '../../src/adapters/store/postgres-run-store.js';
import { requireServices } from '../support/services.js';
import { runStoreContract } from './run-store.contract.js';
import { expectUpgradedRuns, recordRunsBefore0004 } from './sql-store-upgrade.js';

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

const freshSchema = () => `task_mgmt_test_${randomUUID().replace(/-/g, '').slice(0, 16)}`;

describe.skipIf(!ready)('PostgreSQL', () => {
  runStoreContract('PostgresRunStore', async () => {
    const schema = freshSchema();
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

  describe('PostgresRunStore upgrades', () => {
    let schema: string;
    beforeEach(async () => {
      schema = freshSchema();
      await admin((client) => client.query(`CREATE SCHEMA ${schema}`));
    });
    afterEach(async () => {
      await admin((client) => client.query(`DROP SCHEMA ${schema} CASCADE`));
    });

    it('a database written before requester kinds, marking the runs of service tokens', async () => {
      const pool = new pg.Pool({ connectionString: url, max: 1, options: `-c search_path=${schema}` });
      const old = new Kysely<unknown>({ dialect: new PostgresDialect({ pool }) });
      await recordRunsBefore0004(old, 'postgres', schema);
      await old.destroy();

      const store = await PostgresRunStore.open(url, { schema });
      try {
        await expectUpgradedRuns(store);
      } finally {
        await store.close();
      }
    });
  });
});
