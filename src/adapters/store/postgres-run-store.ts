/**
 * The run store on PostgreSQL (DATABASE_URL=postgres://…): shared by an app and workers on
 * other machines. Same queries as SQLite; only the dialect differs.
 */
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import type { Database } from './schema.js';
import { SqlRunStore } from './sql-run-store.js';

// BIGINT columns hold epoch milliseconds and GitHub ids, all far below 2^53: read them as numbers.
pg.types.setTypeParser(pg.types.builtins.INT8, (value) => Number(value));

export class PostgresRunStore extends SqlRunStore {
  static async open(url: string, options: { schema?: string } = {}): Promise<PostgresRunStore> {
    const pool = new pg.Pool({
      connectionString: url,
      max: 10,
      ...(options.schema ? { options: `-c search_path=${options.schema}` } : {}),
    });
    const store = new PostgresRunStore(new Kysely<Database>({ dialect: new PostgresDialect({ pool }) }), 'postgres');
    await store.migrate(options.schema ? { schema: options.schema } : {});
    return store;
  }
}
