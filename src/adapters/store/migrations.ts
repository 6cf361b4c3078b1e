/** Versioned schema migrations, applied in order at start-up. Never edit one that has shipped. */
import { sql, type ColumnDefinitionBuilder, type Kysely, type Migration, type MigrationProvider } from 'kysely';

export type SqlDialectName = 'sqlite' | 'postgres';

/** An auto-numbered primary key in either dialect. */
const idType = (dialect: SqlDialectName) => (dialect === 'postgres' ? 'bigserial' : 'integer');
const idColumn = (dialect: SqlDialectName, column: ColumnDefinitionBuilder) =>
  dialect === 'postgres' ? column.primaryKey() : column.primaryKey().autoIncrement();

const migrations = (dialect: SqlDialectName): Record<string, Migration> => ({
  '0001-runs-deliveries-audit': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('runs')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('repo_owner', 'text', (c) => c.notNull())
        .addColumn('repo_name', 'text', (c) => c.notNull())
        .addColumn('installation_id', 'bigint', (c) => c.notNull())
        .addColumn('number', 'integer')
        .addColumn('is_pull_request', 'integer', (c) => c.notNull())
        .addColumn('sha', 'text', (c) => c.notNull())
        .addColumn('task', 'text', (c) => c.notNull())
        .addColumn('task_type', 'text', (c) => c.notNull())
        .addColumn('dockerfile', 'text', (c) => c.notNull())
        .addColumn('params', 'text', (c) => c.notNull())
        .addColumn('requested_by', 'text', (c) => c.notNull())
        .addColumn('trigger', 'text', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('check_run_id', 'bigint')
        .addColumn('comment_id', 'bigint')
        .addColumn('exit_code', 'integer')
        .addColumn('output_cid', 'text')
        .addColumn('output_files', 'text', (c) => c.notNull().defaultTo('[]'))
        .addColumn('error', 'text')
        .addColumn('log_tail', 'text')
        .addColumn('worker_id', 'text')
        .addColumn('lease_until', 'bigint')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('queued_at', 'bigint', (c) => c.notNull())
        .addColumn('started_at', 'bigint')
        .addColumn('finished_at', 'bigint')
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('runs_state_queued_at').on('runs').columns(['state', 'queued_at']).execute();
      await db.schema.createIndex('runs_repo_created_at').on('runs').columns(['repo_owner', 'repo_name', 'created_at']).execute();
      await db.schema
        .createTable('deliveries')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('event', 'text', (c) => c.notNull())
        .addColumn('payload', 'text', (c) => c.notNull())
        .addColumn('received_at', 'bigint', (c) => c.notNull())
        .addColumn('handled_at', 'bigint')
        .execute();
      await db.schema.createIndex('deliveries_pending').on('deliveries').columns(['handled_at', 'received_at']).execute();
      await db.schema
        .createTable('audit')
        .addColumn('id', idType(dialect), (c) => idColumn(dialect, c))
        .addColumn('at', 'bigint', (c) => c.notNull())
        .addColumn('repo', 'text', (c) => c.notNull())
        .addColumn('number', 'integer')
        .addColumn('actor', 'text', (c) => c.notNull())
        .addColumn('action', 'text', (c) => c.notNull())
        .addColumn('allowed', 'integer', (c) => c.notNull())
        .addColumn('reason', 'text', (c) => c.notNull())
        .addColumn('run_id', 'text')
        .execute();
      await db.schema.createIndex('audit_repo_at').on('audit').columns(['repo', 'at']).execute();
    },
  },
  '0002-approvals-and-waits': {
    async up(db: Kysely<unknown>) {
      await db.schema.alterTable('runs').addColumn('approvals', 'text', (c) => c.notNull().defaultTo('[]')).execute();
      await db.schema.alterTable('runs').addColumn('manifest_digest', 'text', (c) => c.notNull().defaultTo('')).execute();
      await db.schema.createIndex('runs_repo_number_state').on('runs').columns(['repo_owner', 'repo_name', 'number', 'state']).execute();
      await db.schema
        .createTable('approval_waits')
        .addColumn('id', idType(dialect), (c) => idColumn(dialect, c))
        .addColumn('repo', 'text', (c) => c.notNull())
        .addColumn('installation_id', 'bigint', (c) => c.notNull())
        .addColumn('number', 'integer', (c) => c.notNull())
        .addColumn('sha', 'text', (c) => c.notNull())
        .addColumn('task', 'text', (c) => c.notNull())
        .addColumn('check_run_id', 'bigint', (c) => c.notNull())
        .addColumn('requested_by', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('approval_waits_repo_number').on('approval_waits').columns(['repo', 'number']).execute();
      await db.schema.createIndex('audit_actor_at').on('audit').columns(['actor', 'at']).execute();
    },
  },
  '0003-task-specs-and-needs': {
    async up(db: Kysely<unknown>) {
      await db.schema.alterTable('runs').addColumn('spec', 'text', (c) => c.notNull().defaultTo('{}')).execute();
      await db.schema.alterTable('runs').addColumn('needs', 'text', (c) => c.notNull().defaultTo('[]')).execute();
      await db.schema.alterTable('runs').addColumn('metadata', 'text', (c) => c.notNull().defaultTo('{}')).execute();
    },
  },
  '0004-requester-kind-and-required-role': {
    async up(db: Kysely<unknown>) {
      await db.schema.alterTable('runs').addColumn('requester_kind', 'text', (c) => c.notNull().defaultTo('user')).execute();
      await db.schema.alterTable('runs').addColumn('required_role', 'text', (c) => c.notNull().defaultTo('write')).execute();
      // Until now a service token's runs were told apart only by the `service:` prefix of their
      // requester (GitHub logins never contain a colon). substr, not LIKE: SQLite's LIKE ignores case.
      await sql`update runs set requester_kind = 'service' where substr(requested_by, 1, 8) = 'service:'`.execute(db);
    },
  },
  '0005-run-logs': {
    async up(db: Kysely<unknown>) {
      // Logs move from files in the worker's DATA_DIR to the store every process shares (README
      // "Run logs"). One row per log: its size, and the cut between the head and the tail kept.
      await db.schema
        .createTable('run_logs')
        .addColumn('run_id', 'text', (c) => c.primaryKey())
        .addColumn('size', 'bigint', (c) => c.notNull())
        .addColumn('head_end', 'bigint', (c) => c.notNull())
        .addColumn('tail_start', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('run_log_chunks')
        .addColumn('run_id', 'text', (c) => c.notNull())
        .addColumn('byte_offset', 'bigint', (c) => c.notNull())
        .addColumn('bytes', dialect === 'postgres' ? 'bytea' : 'blob', (c) => c.notNull())
        .addPrimaryKeyConstraint('run_log_chunks_pkey', ['run_id', 'byte_offset'])
        .execute();
    },
  },
  '0006-pins': {
    async up(db: Kysely<unknown>) {
      // The latest expiry of the run's complete pins, shown with the run; kept after they are collected.
      await db.schema.alterTable('runs').addColumn('pinned_until', 'bigint').execute();
      // `root` is the pinned CID once the add is complete; while it runs, a key that is never a CID
      // (`adding:<run>:<kind>`) under which its blocks are indexed as they are written.
      await db.schema
        .createTable('pins')
        .addColumn('run_id', 'text', (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('root', 'text', (c) => c.notNull())
        .addColumn('complete', 'integer', (c) => c.notNull())
        .addColumn('pinned_until', 'bigint', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('pins_pkey', ['run_id', 'kind'])
        .execute();
      await db.schema.createIndex('pins_root').on('pins').column('root').execute();
      await db.schema.createIndex('pins_pinned_until').on('pins').column('pinned_until').execute();
      await db.schema
        .createTable('pin_blocks')
        .addColumn('root', 'text', (c) => c.notNull())
        .addColumn('block', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('pin_blocks_pkey', ['root', 'block'])
        .execute();
      await db.schema.createIndex('pin_blocks_block').on('pin_blocks').column('block').execute();
      await db.schema
        .createTable('pin_garbage')
        .addColumn('block', 'text', (c) => c.primaryKey())
        .addColumn('marked_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('pin_garbage_marked_at').on('pin_garbage').column('marked_at').execute();
      await db.schema
        .createTable('named_leases')
        .addColumn('name', 'text', (c) => c.primaryKey())
        .addColumn('holder', 'text', (c) => c.notNull())
        .addColumn('held_until', 'bigint', (c) => c.notNull())
        .execute();
    },
  },
  '0007-provenance': {
    async up(db: Kysely<unknown>) {
      await db.schema.alterTable('runs').addColumn('provenance_cid', 'text').execute();
    },
  },
  '0008-check-outbox': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('check_outbox')
        .addColumn('run_id', 'text', (c) => c.primaryKey())
        .addColumn('report', 'text', (c) => c.notNull())
        .addColumn('kept_at', 'bigint', (c) => c.notNull())
        .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
        .execute();
      await db.schema.createIndex('check_outbox_kept_at').on('check_outbox').column('kept_at').execute();
    },
  },
  '0009-progress': {
    async up(db: Kysely<unknown>) {
      await db.schema.alterTable('runs').addColumn('progress', 'text').execute();
    },
  },
  '0010-runs-repo-state': {
    async up(db: Kysely<unknown>) {
      // Every claim counts its repository's running runs: without this index that count read every
      // run the repository ever had (2,000 of them made a claim ten times dearer).
      await db.schema.createIndex('runs_repo_state').on('runs').columns(['repo_owner', 'repo_name', 'state']).execute();
    },
  },
  '0011-runs-repo-number': {
    async up(db: Kysely<unknown>) {
      // A change of state rewrote this index's entry as well as the two that need the state, and a
      // commit writes every page it touched. A pull request's runs are few, so its index needs no
      // state; with created_at it also lists them newest first.
      await db.schema.dropIndex('runs_repo_number_state').execute();
      await db.schema.createIndex('runs_repo_number').on('runs').columns(['repo_owner', 'repo_name', 'number', 'created_at']).execute();
    },
  },
  '0012-claim-run-in-one-call': {
    async up(db: Kysely<unknown>) {
      // SQLite claims with one UPDATE (it has a single writer); PostgreSQL needs the repository's
      // lock between reading the count and moving the run.
      if (dialect !== 'postgres') return;
      await sql.raw(CLAIM_RUN_FUNCTION).execute(db);
    },
  },
});

/**
 * A claim on PostgreSQL in one round trip. Claims of one repository wait for each other on its
 * advisory lock, held until the claim commits, so two cannot both see the last free slot; as a
 * transaction of four statements from the client, each claim held that lock for four round trips
 * and a commit, and one repository could start only about 700 runs a second here (fewer across a
 * network). Each statement of a PL/pgSQL function takes a fresh snapshot, so the count after the
 * lock sees every claim committed before it. The run's own spec.concurrency, when lower, is its
 * limit. Returns the claimed run, or no row: the run is gone, no longer queued, needs other tasks
 * (with only_without_needs), or its repository has no free slot.
 */
const CLAIM_RUN_FUNCTION = `
create function task_mgmt_claim_run(run_id text, claimer text, lease_until_ms bigint, at_ms bigint, max_running integer, only_without_needs boolean)
returns setof runs
language plpgsql
set search_path from current
as $$
declare
  target runs%rowtype;
begin
  select * into target from runs where id = run_id;
  if not found or target.state <> 'queued' or (only_without_needs and target.needs <> '[]') then
    return;
  end if;
  perform pg_advisory_xact_lock(hashtext('task-mgmt:' || target.repo_owner || '/' || target.repo_name));
  if (select count(*) from runs where repo_owner = target.repo_owner and repo_name = target.repo_name and state = 'running')
      >= least(max_running, coalesce((target.spec::jsonb ->> 'concurrency')::integer, max_running)) then
    return;
  end if;
  return query
    update runs
    set state = 'running', worker_id = claimer, lease_until = lease_until_ms, started_at = at_ms, updated_at = at_ms
    where id = run_id and state = 'queued'
    returning *;
end;
$$`;

/** Where the applied migrations are recorded. */
export const migrationTables = { migrationTableName: 'task_mgmt_migrations', migrationLockTableName: 'task_mgmt_migrations_lock' } as const;

export function migrationProvider(dialect: SqlDialectName): MigrationProvider {
  return {
    async getMigrations() {
      return migrations(dialect);
    },
  };
}
