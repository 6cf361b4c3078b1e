/** The embedded run store: one SQLite file in DATA_DIR, no server to run. */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import SQLite from 'better-sqlite3';
import { Kysely } from 'kysely';
import type { Database } from './schema.js';
import { GroupCommitSqliteDialect } from './sqlite-group-commit.js';
import { SqlRunStore } from './sql-run-store.js';

export class SqliteRunStore extends SqlRunStore {
  static async open(file: string): Promise<SqliteRunStore> {
    if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
    const database = new SQLite(file);
    // WAL lets a separate worker process read while the app writes; busy_timeout makes writers wait.
    database.pragma('journal_mode = WAL');
    database.pragma('busy_timeout = 5000');
    database.pragma('synchronous = NORMAL');
    const dialect = new GroupCommitSqliteDialect(database);
    const store = new SqliteRunStore(new Kysely<Database>({ dialect }), 'sqlite', { execute: (query) => dialect.execute(query) });
    await store.migrate();
    return store;
  }

  /** Opens an existing store to read it beside a running app (inspection, tests): no migrations, no writes. */
  static openReadOnly(file: string): SqliteRunStore {
    const database = new SQLite(file, { readonly: true, fileMustExist: true });
    database.pragma('busy_timeout = 5000');
    const dialect = new GroupCommitSqliteDialect(database);
    return new SqliteRunStore(new Kysely<Database>({ dialect }), 'sqlite', { execute: (query) => dialect.execute(query) });
  }
}
