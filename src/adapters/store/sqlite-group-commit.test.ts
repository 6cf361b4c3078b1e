import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import SQLite from 'better-sqlite3';
import { Kysely, sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GroupCommitSqliteDialect } from './sqlite-group-commit.js';

interface Schema {
  items: { id: string; value: string };
}

/** A better-sqlite3 database that counts the commits run on it. */
function countingCommits(database: SQLite.Database): { database: SQLite.Database; commits: () => number } {
  let commits = 0;
  const proxy = new Proxy(database, {
    get(target, property) {
      if (property === 'prepare') {
        return (text: string) => {
          const statement = target.prepare(text);
          if (text !== 'commit') return statement;
          return new Proxy(statement, {
            get(inner, name) {
              const value = Reflect.get(inner, name, inner) as unknown;
              if (name === 'run') {
                return (...args: unknown[]) => {
                  commits += 1;
                  return (value as (...a: unknown[]) => unknown).apply(inner, args);
                };
              }
              return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(inner) : value;
            },
          });
        };
      }
      const value = Reflect.get(target, property, target) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  return { database: proxy, commits: () => commits };
}

describe('GroupCommitSqliteDialect', () => {
  let dir: string;
  let file: string;
  let db: Kysely<Schema>;
  let commits: () => number;
  /** A second connection to the same file: what other processes see. */
  let other: SQLite.Database;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'group-commit-'));
    file = join(dir, 'store.sqlite');
    const raw = new SQLite(file);
    raw.pragma('journal_mode = WAL');
    raw.exec('create table items (id text primary key, value text not null)');
    // A value of 'doom' ends the whole transaction, as a full disk would.
    raw.exec(`create trigger doom before insert on items when new.value = 'doom' begin select raise(rollback, 'doomed'); end`);
    const counted = countingCommits(raw);
    commits = counted.commits;
    db = new Kysely<Schema>({ dialect: new GroupCommitSqliteDialect(counted.database) });
    other = new SQLite(file, { readonly: true });
  });

  afterEach(async () => {
    other.close();
    await db.destroy().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });

  const insert = (id: string, value = 'v') => db.insertInto('items').values({ id, value }).returningAll().executeTakeFirstOrThrow();
  const seenByOthers = (id: string) => other.prepare('select value from items where id = ?').get(id) as { value: string } | undefined;

  it('commits writes made together once, and answers each only once it is stored', async () => {
    const seenWhenAnswered: Array<string | undefined> = [];
    const writes = Array.from({ length: 20 }, (_, i) =>
      insert(`item-${i}`).then((row) => {
        seenWhenAnswered.push(seenByOthers(row.id)?.value);
        return row;
      }),
    );
    const rows = await Promise.all(writes);
    expect(rows.map((row) => row.id)).toEqual(Array.from({ length: 20 }, (_, i) => `item-${i}`));
    expect(seenWhenAnswered).toEqual(Array.from({ length: 20 }, () => 'v'));
    expect(commits()).toBe(1);
  });

  it('writes made one after another each commit on their own', async () => {
    for (let i = 0; i < 5; i += 1) {
      await insert(`item-${i}`);
      expect(seenByOthers(`item-${i}`)).toEqual({ value: 'v' });
    }
  });

  it('a failing write fails alone: the others of its group are stored', async () => {
    await insert('taken');
    const outcomes = await Promise.allSettled([insert('a'), insert('taken', 'again'), insert('b')]);
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((outcomes[1] as PromiseRejectedResult).reason).toMatchObject({ code: 'SQLITE_CONSTRAINT_PRIMARYKEY' });
    expect([seenByOthers('a'), seenByOthers('b'), seenByOthers('taken')]).toEqual([{ value: 'v' }, { value: 'v' }, { value: 'v' }]);
  });

  it('a write that ends the whole transaction costs the others nothing: each is run again on its own', async () => {
    const outcomes = await Promise.allSettled([insert('a'), insert('doomed', 'doom'), insert('b')]);
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(String((outcomes[1] as PromiseRejectedResult).reason)).toContain('doomed');
    expect([seenByOthers('a'), seenByOthers('doomed'), seenByOthers('b')]).toEqual([{ value: 'v' }, undefined, { value: 'v' }]);
  });

  it('an explicit transaction holds the connection: writes and reads of others wait for it, and see all or nothing of it', async () => {
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const transaction = db.transaction().execute(async (trx) => {
      await trx.insertInto('items').values({ id: 't1', value: 'v' }).execute();
      await held;
      await trx.insertInto('items').values({ id: 't2', value: 'v' }).execute();
    });
    await new Promise((resolve) => setTimeout(resolve, 20));
    const read = db.selectFrom('items').select('id').orderBy('id').execute();
    const write = insert('outside');
    let readDone = false;
    void read.then(() => (readDone = true));
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(readDone).toBe(false);
    release();
    await transaction;
    expect((await read).map((row) => row.id)).toEqual(['t1', 't2']);
    expect(await write).toEqual({ id: 'outside', value: 'v' });
  });

  it('a transaction that throws leaves nothing, and the connection goes on', async () => {
    await expect(
      db.transaction().execute(async (trx) => {
        await trx.insertInto('items').values({ id: 'gone', value: 'v' }).execute();
        throw new Error('changed my mind');
      }),
    ).rejects.toThrow('changed my mind');
    expect(seenByOthers('gone')).toBeUndefined();
    await insert('after');
    expect(seenByOthers('after')).toEqual({ value: 'v' });
  });

  it('streams a query while holding the connection', async () => {
    await Promise.all(['a', 'b', 'c'].map((id) => insert(id)));
    const seen: string[] = [];
    for await (const row of db.selectFrom('items').select('id').orderBy('id').stream()) seen.push(row.id);
    expect(seen).toEqual(['a', 'b', 'c']);
  });

  it('closing stores the writes already asked for', async () => {
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const transaction = db.transaction().execute(() => held);
    await new Promise((resolve) => setTimeout(resolve, 20));
    // The write waits for the connection, and the close waits for the transaction.
    const pending = insert('last');
    await new Promise((resolve) => setTimeout(resolve, 20));
    const closed = db.destroy();
    release();
    await transaction;
    await closed;
    expect(await pending).toEqual({ id: 'last', value: 'v' });
    expect(seenByOthers('last')).toEqual({ value: 'v' });
    await expect(insert('too-late')).rejects.toThrow();
  });

  it('runs raw statements and reports changed rows as Kysely does', async () => {
    await Promise.all(['a', 'b'].map((id) => insert(id)));
    const result = await db.updateTable('items').set({ value: 'w' }).executeTakeFirst();
    expect(result.numUpdatedRows).toBe(2n);
    const { rows } = await sql<{ n: number }>`select count(*) as n from items where value = 'w'`.execute(db);
    expect(rows).toEqual([{ n: 2 }]);
  });

  it('names row fields after any column name, odd ones included, and sees columns added by others', async () => {
    await insert('a');
    const { rows } = await sql<Record<string, unknown>>`select id as "__proto__", value as "it's ""quoted""", 1 as "constructor", id || '}' as "}" from items`.execute(db);
    expect(rows).toHaveLength(1);
    const row = rows[0]!;
    expect(Object.getPrototypeOf(row)).toBe(Object.prototype);
    expect(Object.keys(row)).toEqual(['__proto__', `it's "quoted"`, 'constructor', '}']);
    expect(Object.getOwnPropertyDescriptor(row, '__proto__')?.value).toBe('a');
    expect(row).toMatchObject({ [`it's "quoted"`]: 'v', constructor: 1, '}': 'a}' });

    // Another process adds a column: the same statement's rows gain it.
    const select = () => db.selectFrom('items').selectAll().where('id', '=', 'a').executeTakeFirstOrThrow();
    expect(await select()).toEqual({ id: 'a', value: 'v' });
    const migrating = new SQLite(file);
    migrating.exec(`alter table items add column extra text not null default 'x'`);
    migrating.close();
    expect(await select()).toEqual({ id: 'a', value: 'v', extra: 'x' });
  });
});
