import SQLite from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';
import { describe, expect, it } from 'vitest';
import { CompiledQueries } from './compiled-queries.js';

interface Schema {
  items: { id: string; state: string; owner: string };
}

function database() {
  const raw = new SQLite(':memory:');
  raw.exec(`create table items (id text primary key, state text not null, owner text not null)`);
  raw.exec(`insert into items values ('a', 'queued', 'x'), ('b', 'queued', 'y'), ('c', 'running', 'x')`);
  return new Kysely<Schema>({ dialect: new SqliteDialect({ database: raw }) });
}

describe('CompiledQueries', () => {
  it('builds a shape once and puts each call’s values where its markers landed', async () => {
    const db = database();
    const queries = new CompiledQueries();
    let builds = 0;
    const select = (owner: string, states: [string, string]) =>
      queries.query('by-owner', { owner, first: states[0], second: states[1] }, (marker) => {
        builds += 1;
        return db.selectFrom('items').select('id').where('state', 'in', [marker('first'), marker('second')]).where('owner', '=', marker('owner')).orderBy('id');
      });
    expect((await db.executeQuery(select('x', ['queued', 'running']))).rows).toEqual([{ id: 'a' }, { id: 'c' }]);
    expect((await db.executeQuery(select('y', ['queued', 'queued']))).rows).toEqual([{ id: 'b' }]);
    expect((await db.executeQuery(select('x', ['running', 'running']))).rows).toEqual([{ id: 'c' }]);
    expect(builds).toBe(1);
    await db.destroy();
  });

  it('keeps values given as they are as constants of the shape', async () => {
    const db = database();
    const queries = new CompiledQueries();
    const running = (owner: string) => queries.query('running', { owner }, (marker) => db.selectFrom('items').select('id').where('state', '=', 'running').where('owner', '=', marker('owner')));
    expect((await db.executeQuery(running('x'))).rows).toEqual([{ id: 'c' }]);
    expect((await db.executeQuery(running('y'))).rows).toEqual([]);
    await db.destroy();
  });

  it('refuses a call that lacks a value its shape needs', () => {
    const db = database();
    const queries = new CompiledQueries();
    queries.query('one', { id: 'a' }, (marker) => db.selectFrom('items').selectAll().where('id', '=', marker('id')));
    expect(() => queries.query('one', {} as { id: string }, (marker) => db.selectFrom('items').selectAll().where('id', '=', marker('id')))).toThrow(/needs a value for id/);
  });
});
