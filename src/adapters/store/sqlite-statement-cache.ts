/**
 * Kysely's SQLite driver prepares every query anew: compiling the SQL text again cost as much CPU
 * as running it (a third of a queued → running → succeeded run's store time). This hands Kysely
 * better-sqlite3 statements kept by their SQL text, the most recently used few hundred of them.
 * A statement being iterated is busy until its iterator ends, so streamed queries get a fresh one.
 */
import type { Database, Statement } from 'better-sqlite3';
import type { SqliteDatabase, SqliteStatement } from 'kysely';

const DEFAULT_CAPACITY = 256;

export function cachingStatements(database: Database, capacity = DEFAULT_CAPACITY): SqliteDatabase {
  const cache = new Map<string, SqliteStatement>();
  return {
    close: () => {
      cache.clear();
      database.close();
    },
    prepare(sql: string): SqliteStatement {
      const cached = cache.get(sql);
      if (cached) {
        // Map keeps insertion order: moving the entry to the end makes the first one the least recently used.
        cache.delete(sql);
        cache.set(sql, cached);
        return cached;
      }
      const statement = database.prepare(sql);
      const entry: SqliteStatement = {
        reader: statement.reader,
        all: (parameters) => statement.all(...(parameters as unknown[])),
        run: (parameters) => statement.run(...(parameters as unknown[])),
        iterate: (parameters) => (database.prepare(sql) as Statement<unknown[]>).iterate(...(parameters as unknown[])),
      };
      cache.set(sql, entry);
      if (cache.size > capacity) cache.delete(cache.keys().next().value!);
      return entry;
    },
  };
}
