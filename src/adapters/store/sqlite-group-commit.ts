/**
 * The embedded store's Kysely dialect: better-sqlite3 with group commit and kept statements.
 *
 * A commit is the dearest part of a write on SQLite (the WAL is written for every commit: about
 * 60–90 µs here, where the statement itself takes a few), and a run makes three of them (recorded,
 * claimed, finished). Writes that arrive in the same turn of the event loop — from concurrent
 * webhooks, or workers finishing together — are run in one transaction and committed once, and
 * each caller's promise settles only after that commit, so nobody acts on a write that is not yet
 * stored. A statement that fails is undone alone, as it would be on its own (SQLite rolls back the
 * failing statement and keeps the transaction); an error that ends the whole transaction (disk
 * full, busy) makes every write of the group run again on its own, none of them having been
 * answered yet.
 *
 * Reads run at once. Explicit transactions, streams and the group's commit each hold the one
 * connection in turn, as Kysely's own SQLite driver does with every query.
 *
 * Statements are prepared once and kept by their SQL text (the most recently used few hundred):
 * preparing anew, as Kysely's driver does, cost as much as running them.
 */
import { setImmediate } from 'node:timers';
import type { Database as SqliteDatabase, Statement } from 'better-sqlite3';
import {
  CompiledQuery,
  SqliteAdapter,
  SqliteIntrospector,
  SqliteQueryCompiler,
  type DatabaseConnection,
  type DatabaseIntrospector,
  type Dialect,
  type DialectAdapter,
  type Driver,
  type Kysely,
  type QueryCompiler,
  type QueryResult,
} from 'kysely';

const DEFAULT_STATEMENTS_KEPT = 256;

export interface GroupCommitOptions {
  /** How many prepared statements are kept. */
  statementsKept?: number;
}

export class GroupCommitSqliteDialect implements Dialect {
  #driver: GroupCommitSqliteDriver | undefined;

  constructor(
    private readonly database: SqliteDatabase,
    private readonly options: GroupCommitOptions = {},
  ) {}

  /**
   * Runs a compiled query as a Kysely connection outside a transaction would (reads at once,
   * writes in the next group commit), without Kysely's connection handling around it.
   */
  execute(compiled: CompiledQuery): Promise<QueryResult<unknown>> {
    return this.#theDriver().execute(compiled);
  }

  #theDriver(): GroupCommitSqliteDriver {
    this.#driver ??= new GroupCommitSqliteDriver(this.database, this.options);
    return this.#driver;
  }

  createAdapter(): DialectAdapter {
    return new SqliteAdapter();
  }

  createDriver(): Driver {
    return this.#theDriver();
  }

  createIntrospector(db: Kysely<any>): DatabaseIntrospector {
    return new SqliteIntrospector(db);
  }

  createQueryCompiler(): QueryCompiler {
    return new SqliteQueryCompiler();
  }
}

/** A write waiting for its group's commit. */
interface PendingWrite {
  statement: Statement<unknown[]>;
  parameters: readonly unknown[];
  resolve: (result: QueryResult<unknown>) => void;
  reject: (error: unknown) => void;
}

type Outcome = { ok: true; result: QueryResult<unknown> } | { ok: false; error: unknown };

class GroupCommitSqliteDriver implements Driver {
  readonly #database: SqliteDatabase;
  readonly #statements: StatementCache;
  readonly #turn = new Turn();
  #pending: PendingWrite[] = [];
  #flushScheduled = false;
  #closed = false;

  constructor(database: SqliteDatabase, options: GroupCommitOptions) {
    this.#database = database;
    this.#statements = new StatementCache(database, options.statementsKept ?? DEFAULT_STATEMENTS_KEPT);
  }

  async init(): Promise<void> {}

  async acquireConnection(): Promise<DatabaseConnection> {
    return new GroupCommitConnection(this);
  }

  async beginTransaction(connection: DatabaseConnection): Promise<void> {
    const own = connection as GroupCommitConnection;
    await this.#turn.take();
    own.holdsTurn = true;
    try {
      // IMMEDIATE takes the write lock now (waiting up to busy_timeout for another process),
      // rather than failing at the first write of a transaction that has already read.
      this.#statements.get('begin immediate').run();
    } catch (error) {
      this.giveBack(own);
      throw error;
    }
  }

  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    this.#statements.get('commit').run();
    this.giveBack(connection as GroupCommitConnection);
  }

  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    try {
      // A failed commit or a disk error may already have ended the transaction.
      if (this.#database.inTransaction) this.#statements.get('rollback').run();
    } finally {
      this.giveBack(connection as GroupCommitConnection);
    }
  }

  async savepoint(connection: DatabaseConnection, name: string): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw(`savepoint ${quoteName(name)}`));
  }

  async rollbackToSavepoint(connection: DatabaseConnection, name: string): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw(`rollback to ${quoteName(name)}`));
  }

  async releaseSavepoint(connection: DatabaseConnection, name: string): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw(`release ${quoteName(name)}`));
  }

  async releaseConnection(connection: DatabaseConnection): Promise<void> {
    this.giveBack(connection as GroupCommitConnection);
  }

  async destroy(): Promise<void> {
    // Writes already asked for are stored before the file is closed.
    await this.#turn.take();
    try {
      this.#commitGroup();
    } finally {
      this.#closed = true;
      this.#turn.give();
      this.#statements.clear();
      this.#database.close();
    }
  }

  /** Runs a query outside any transaction of the caller's. */
  async execute(compiled: CompiledQuery): Promise<QueryResult<unknown>> {
    this.#assertOpen();
    const statement = this.#statements.get(compiled.sql);
    if (!statement.readonly) return this.#enqueue(statement, compiled.parameters);
    const turn = this.#turn.take();
    if (turn) await turn;
    try {
      return run(statement, compiled.parameters);
    } finally {
      this.#turn.give();
    }
  }

  /** Runs a query inside the caller's own transaction, which holds the connection. */
  executeHeld(compiled: CompiledQuery): QueryResult<unknown> {
    this.#assertOpen();
    return run(this.#statements.get(compiled.sql), compiled.parameters);
  }

  async *stream(connection: GroupCommitConnection, compiled: CompiledQuery): AsyncIterableIterator<QueryResult<unknown>> {
    this.#assertOpen();
    const statement = this.#statements.get(compiled.sql);
    if (!statement.reader) throw new Error('the SQLite store streams only queries that return rows');
    // An iterating statement keeps the connection busy until it ends: nothing else may run meanwhile.
    const held = connection.holdsTurn;
    if (!held) await this.#turn.take();
    try {
      // A statement being iterated is busy, so streams get one of their own.
      const own = this.#database.prepare(compiled.sql) as Statement<unknown[]>;
      for (const row of own.iterate(...compiled.parameters)) yield { rows: [row] };
    } finally {
      if (!held) this.#turn.give();
    }
  }

  giveBack(connection: GroupCommitConnection): void {
    if (!connection.holdsTurn) return;
    connection.holdsTurn = false;
    this.#turn.give();
  }

  #enqueue(statement: Statement<unknown[]>, parameters: readonly unknown[]): Promise<QueryResult<unknown>> {
    return new Promise((resolve, reject) => {
      this.#pending.push({ statement, parameters, resolve, reject });
      if (this.#flushScheduled) return;
      this.#flushScheduled = true;
      // After this turn's I/O callbacks, so the writes they make join the group.
      setImmediate(() => void this.#flush());
    });
  }

  async #flush(): Promise<void> {
    const turn = this.#turn.take();
    if (turn) await turn;
    // Writes that came while the connection was busy join this group too.
    this.#flushScheduled = false;
    try {
      this.#commitGroup();
    } finally {
      this.#turn.give();
    }
  }

  /** Runs and commits every pending write, then answers each; the caller holds the turn. */
  #commitGroup(): void {
    const group = this.#pending;
    this.#pending = [];
    if (group.length === 0) return;
    const outcomes = group.length === 1 ? [this.#alone(group[0]!)] : this.#together(group) ?? group.map((write) => this.#alone(write));
    group.forEach((write, i) => {
      const outcome = outcomes[i]!;
      if (outcome.ok) write.resolve(outcome.result);
      else write.reject(outcome.error);
    });
  }

  /** One transaction for the group; null when it had to be rolled back as a whole. */
  #together(group: readonly PendingWrite[]): Outcome[] | null {
    try {
      this.#statements.get('begin immediate').run();
    } catch {
      return null;
    }
    const outcomes: Outcome[] = [];
    for (const write of group) {
      try {
        outcomes.push({ ok: true, result: run(write.statement, write.parameters) });
      } catch (error) {
        // SQLite undid this statement alone; an error that ended the transaction undid them all.
        if (!this.#database.inTransaction) return null;
        outcomes.push({ ok: false, error });
      }
    }
    try {
      this.#statements.get('commit').run();
      return outcomes;
    } catch {
      if (this.#database.inTransaction) this.#statements.get('rollback').run();
      return null;
    }
  }

  #alone(write: PendingWrite): Outcome {
    try {
      return { ok: true, result: run(write.statement, write.parameters) };
    } catch (error) {
      return { ok: false, error };
    }
  }

  #assertOpen(): void {
    if (this.#closed) throw new Error('the run store is closed');
  }
}

class GroupCommitConnection implements DatabaseConnection {
  /** Whether this connection holds the turn (an explicit transaction of its own). */
  holdsTurn = false;

  constructor(private readonly driver: GroupCommitSqliteDriver) {}

  async executeQuery<R>(compiled: CompiledQuery): Promise<QueryResult<R>> {
    return (this.holdsTurn ? this.driver.executeHeld(compiled) : await this.driver.execute(compiled)) as QueryResult<R>;
  }

  streamQuery<R>(compiled: CompiledQuery): AsyncIterableIterator<QueryResult<R>> {
    return this.driver.stream(this, compiled) as AsyncIterableIterator<QueryResult<R>>;
  }
}

function run(statement: Statement<unknown[]>, parameters: readonly unknown[]): QueryResult<unknown> {
  if (statement.reader) return { rows: rowsOf(statement, parameters) };
  const { changes, lastInsertRowid } = statement.run(...parameters);
  if (changesSchema.test(statement.source)) schemaVersion += 1;
  return { numAffectedRows: BigInt(changes), insertId: BigInt(lastInsertRowid), rows: [] };
}

/**
 * The rows of a statement that returns some, read as arrays and made objects here: better-sqlite3
 * building each row as an object cost a third of reading a run's 38 columns.
 */
function rowsOf(statement: Statement<unknown[]>, parameters: readonly unknown[]): Record<string, unknown>[] {
  let shape = rowShape(statement);
  const values = statement.raw(true).all(...parameters) as unknown[][];
  // Another process may have added a column since (SQLite prepares the statement again by itself).
  if (values.length > 0 && values[0]!.length !== shape.names.length) shape = rowShape(statement, true);
  return values.map((row) => shape.build(row));
}

interface RowShape {
  names: string[];
  /** Makes one row's object from its values, in the statement's column order. */
  build: (values: unknown[]) => Record<string, unknown>;
}

/** Row shapes by statement; a statement whose columns change (after a migration) is read again. */
const shapes = new WeakMap<Statement<unknown[]>, RowShape & { version: number }>();
let schemaVersion = 0;

const changesSchema = /^\s*(create|alter|drop)\s/i;

function rowShape(statement: Statement<unknown[]>, again = false): RowShape {
  const known = shapes.get(statement);
  if (known && known.version === schemaVersion && !again) return known;
  const names = statement.columns().map((column) => column.name);
  const shape = { names, build: rowBuilder(names), version: schemaVersion };
  shapes.set(statement, shape);
  return shape;
}

/**
 * An object literal with the statement's column names, made once per statement: V8 then gives
 * every row one fixed layout, where setting 38 names one by one made each row a slow dictionary
 * (1.3 µs a row against 0.04, and slower to read afterwards). The names are SQLite's own column
 * names, quoted as JSON strings; a name that a literal would treat specially falls back to the loop.
 */
function rowBuilder(names: readonly string[]): RowShape['build'] {
  if (names.includes('__proto__')) {
    return (values) => {
      const row: Record<string, unknown> = {};
      names.forEach((name, i) => Object.defineProperty(row, name, { value: values[i], enumerable: true, writable: true, configurable: true }));
      return row;
    };
  }
  return new Function('values', `return { ${names.map((name, i) => `${JSON.stringify(name)}: values[${i}]`).join(', ')} };`) as RowShape['build'];
}

function quoteName(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** Prepared statements by SQL text, the least recently used dropped first. */
class StatementCache {
  readonly #kept = new Map<string, Statement<unknown[]>>();

  constructor(
    private readonly database: SqliteDatabase,
    private readonly capacity: number,
  ) {}

  get(sql: string): Statement<unknown[]> {
    const kept = this.#kept.get(sql);
    if (kept) {
      // A Map keeps insertion order: moving the entry to the end leaves the least recently used first.
      this.#kept.delete(sql);
      this.#kept.set(sql, kept);
      return kept;
    }
    const statement = this.database.prepare(sql) as Statement<unknown[]>;
    this.#kept.set(sql, statement);
    if (this.#kept.size > this.capacity) this.#kept.delete(this.#kept.keys().next().value!);
    return statement;
  }

  clear(): void {
    this.#kept.clear();
  }
}

/**
 * The one connection's turn: taken by a read, a group's commit, a transaction or a stream, and
 * handed to the next in the order they asked.
 */
class Turn {
  #taken = false;
  readonly #waiting: Array<() => void> = [];

  take(): Promise<void> | void {
    if (!this.#taken) {
      this.#taken = true;
      return;
    }
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  give(): void {
    const next = this.#waiting.shift();
    if (next) next();
    else this.#taken = false;
  }
}
