/**
 * RunStore over any SQL database Kysely speaks: every section of the port over one database. The
 * SQLite and PostgreSQL adapters only choose the dialect; the queries live here once.
 */
import { CompiledQuery, Migrator, sql, type Insertable, type Kysely, type QueryResult, type Selectable, type Transaction } from 'kysely';
import { canMove, isFinal, outputFileSchema, runMoves, runSpecSchema, type Approval, type Run, type RunMove, type RunProgress, type RunState } from '../../core/runs/run.js';
import type { AdmissionOutcome, ApprovalWait, AuditEntry, CommandAdmission, InboxDelivery, ListRunsQuery, LogInfo, LogRead, MoveGuard, MovePatch, NewRun, PendingCheckUpdate, Pin, PinHolder, PinKind, Pruned, RunClaim, RunPatch, RunStore } from '../../ports/run-store.js';
import { LOG_CHUNK_MAX_BYTES, LogOffsetError } from '../../ports/run-store.js';
import { CompiledQueries, type MarkerOf } from './compiled-queries.js';
import { migrationProvider, migrationTables, type SqlDialectName } from './migrations.js';
import type { Database, PinsTable, RunLogsTable, RunsTable } from './schema.js';

export class RunNotFoundError extends Error {
  override readonly name = 'RunNotFoundError';
  constructor(readonly runId: string) {
    super(`run ${runId} does not exist`);
  }
}

/** Indexing or completing a pin that was never started, or was replaced or collected meanwhile. */
export class PinNotOpenError extends Error {
  override readonly name = 'PinNotOpenError';
  constructor(
    readonly runId: string,
    readonly kind: PinKind,
  ) {
    super(`run ${runId} has no ${kind} pin being added`);
  }
}

/** Rows per INSERT of block CIDs: two parameters each, far below SQLite's and PostgreSQL's limits. */
const BLOCK_ROWS_PER_INSERT = 500;

/** Where an add's blocks are indexed until its root is known; never a CID (CIDs have no colon). */
const addingKey = (runId: string, kind: PinKind) => `adding:${runId}:${kind}`;

export class SqlRunStore implements RunStore {
  /** The queries every run makes, compiled once per shape. */
  private readonly queries = new CompiledQueries();

  /**
   * Runs a query compiled here. By default through Kysely; the embedded store hands it straight to
   * its driver, since Kysely's connection handling cost as much as SQLite reading a run.
   */
  private readonly run: <R>(query: CompiledQuery) => Promise<QueryResult<R>>;

  constructor(
    protected readonly db: Kysely<Database>,
    private readonly dialect: SqlDialectName,
    options: { execute?: (query: CompiledQuery) => Promise<QueryResult<unknown>> } = {},
  ) {
    this.run = (options.execute ?? ((query: CompiledQuery) => db.executeQuery(query))) as <R>(query: CompiledQuery) => Promise<QueryResult<R>>;
  }

  /**
   * Applies pending migrations; call once before use. With `schema`, the migration bookkeeping
   * is looked up in that schema only: Kysely otherwise takes a table of that name in any schema
   * of the database for its own (a second deployment's, or a test's beside it).
   */
  async migrate(options: { schema?: string } = {}): Promise<void> {
    const migrator = new Migrator({
      db: this.db,
      provider: migrationProvider(this.dialect),
      ...migrationTables,
      ...(options.schema ? { migrationTableSchema: options.schema } : {}),
    });
    const { error, results } = await migrator.migrateToLatest();
    const failed = results?.find((r) => r.status === 'Error');
    if (error || failed) {
      throw new Error(`database migration ${failed?.migrationName ?? ''} failed: ${(error as Error | undefined)?.message ?? 'unknown error'}`, { cause: error });
    }
  }

  async recordDelivery(delivery: InboxDelivery): Promise<boolean> {
    const result = await this.db
      .insertInto('deliveries')
      .values({
        id: delivery.id,
        event: delivery.event,
        payload: JSON.stringify(delivery.payload),
        received_at: delivery.receivedAt.getTime(),
        handled_at: null,
      })
      .onConflict((oc) => oc.column('id').doNothing())
      .executeTakeFirst();
    return Number(result.numInsertedOrUpdatedRows ?? 0n) === 1;
  }

  async markDeliveryHandled(deliveryId: string, now: Date): Promise<void> {
    await this.db.updateTable('deliveries').set({ handled_at: now.getTime() }).where('id', '=', deliveryId).execute();
  }

  async pendingDeliveries(limit: number): Promise<InboxDelivery[]> {
    const rows = await this.db
      .selectFrom('deliveries')
      .selectAll()
      .where('handled_at', 'is', null)
      .orderBy('received_at', 'asc')
      .limit(limit)
      .execute();
    return rows.map((row) => ({ id: row.id, event: row.event, payload: JSON.parse(row.payload) as unknown, receivedAt: new Date(Number(row.received_at)) }));
  }

  // Moves of a run return the row they wrote (RETURNING, in SQLite and PostgreSQL alike): reading
  // it back with a second query doubled the store's cost of every move a worker makes.
  async createRun(run: NewRun, now: Date): Promise<Run> {
    const at = now.getTime();
    const values: Insertable<RunsTable> = {
      id: run.id,
      repo_owner: run.repo.owner,
      repo_name: run.repo.name,
      installation_id: run.repo.installationId,
      number: run.number,
      is_pull_request: run.isPullRequest ? 1 : 0,
      sha: run.sha,
      task: run.task,
      task_type: run.taskType,
      dockerfile: run.dockerfile,
      params: JSON.stringify(run.params),
      requested_by: run.requestedBy,
      requester_kind: run.requesterKind,
      required_role: run.requiredRole,
      trigger: run.trigger,
      approvals: JSON.stringify(run.approvals),
      manifest_digest: run.manifestDigest,
      spec: JSON.stringify(run.spec),
      needs: JSON.stringify(run.needs),
      metadata: '{}',
      state: 'queued',
      check_run_id: run.checkRunId ?? null,
      comment_id: run.commentId,
      exit_code: null,
      output_cid: null,
      output_files: '[]',
      error: null,
      log_tail: null,
      worker_id: null,
      lease_until: null,
      created_at: at,
      queued_at: at,
      started_at: null,
      finished_at: null,
      updated_at: at,
      pinned_until: null,
      provenance_cid: null,
      progress: null,
    };
    // Every column is given, so the row stored is `values`: reading it back (RETURNING) doubled what
    // SQLite spent on the insert.
    await this.run(this.queries.query('createRun', values, (marker) => this.db.insertInto('runs').values(markers(values, marker))));
    return toRun(values as Selectable<RunsTable>);
  }

  async getRun(id: string): Promise<Run | null> {
    const query = this.queries.query('getRun', { id }, (marker) => this.db.selectFrom('runs').selectAll().where('id', '=', marker('id')));
    const { rows } = await this.run<Selectable<RunsTable>>(query);
    return rows[0] ? toRun(rows[0]) : null;
  }

  async updateRun(id: string, patch: RunPatch, now: Date): Promise<Run> {
    const row = await this.db
      .updateTable('runs')
      .set({ ...patchColumns(patch), updated_at: now.getTime() })
      .where('id', '=', id)
      .returningAll()
      .executeTakeFirst();
    if (!row) throw new RunNotFoundError(id);
    return toRun(row);
  }

  async transition(
    id: string,
    move: RunMove,
    now: Date,
    patch: MovePatch = {},
    guard: MoveGuard = {},
  ): Promise<Run | null> {
    const { from, to } = runMoves[move];
    const at = now.getTime();
    const { workerId, leaseUntil, ...rest } = patch;
    const columns: Partial<RunsTable> = { ...patchColumns(rest), state: to, updated_at: at };
    if (workerId !== undefined) columns.worker_id = workerId;
    if (leaseUntil !== undefined) columns.lease_until = leaseUntil?.getTime() ?? null;
    if (to === 'running') columns.started_at = at;
    if (to === 'queued') {
      columns.queued_at = at;
      columns.started_at = null;
    }
    if (isFinal(to)) {
      columns.finished_at = at;
      columns.worker_id = null;
      columns.lease_until = null;
    }
    // The state check in WHERE makes the move atomic: two workers cannot both take a run, and a
    // worker whose run was cancelled or handed to another worker (heldBy) changes nothing.
    const held = guard.heldBy !== undefined;
    const values = { ...columns, $id: id, $heldBy: guard.heldBy };
    const shape = `transition:${move}:${Object.keys(columns).join(',')}:${held}`;
    const query = this.queries.query(shape, values, (marker) => {
      let update = this.db
        .updateTable('runs')
        .set(markers(columns, marker))
        .where('id', '=', marker('$id'))
        .where('state', 'in', [...from]);
      if (held) update = update.where('worker_id', '=', marker('$heldBy'));
      return update.returningAll();
    });
    const { rows } = await this.run<Selectable<RunsTable>>(query);
    return rows[0] ? toRun(rows[0]) : null;
  }

  async listRuns(query: ListRunsQuery): Promise<Run[]> {
    let select = this.db.selectFrom('runs').selectAll();
    if (query.state) select = select.where('state', '=', query.state);
    if (query.states) select = select.where('state', 'in', [...query.states]);
    if (query.number !== undefined) select = select.where('number', '=', query.number);
    if (query.repo) {
      const [owner = '', name = ''] = query.repo.split('/');
      select = select.where('repo_owner', '=', owner).where('repo_name', '=', name);
    }
    const rows = await select
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .limit(Math.min(query.limit ?? 50, 500))
      .execute();
    return rows.map(toRun);
  }

  async listQueued(limit: number): Promise<Run[]> {
    const rows = await this.db
      .selectFrom('runs')
      .selectAll()
      .where('state', '=', 'queued')
      .orderBy('queued_at', 'asc')
      .orderBy('id', 'asc')
      .limit(limit)
      .execute();
    return rows.map(toRun);
  }

  async pruneBefore(before: Date, limit: number): Promise<Pruned> {
    const cutoff = before.getTime();
    const deliveries = await this.db
      .selectFrom('deliveries')
      .select('id')
      .where('handled_at', 'is not', null)
      .where('handled_at', '<', cutoff)
      .limit(limit)
      .execute();
    if (deliveries.length > 0) await this.db.deleteFrom('deliveries').where('id', 'in', deliveries.map((row) => row.id)).execute();
    const audit = await this.db.selectFrom('audit').select('id').where('at', '<', cutoff).orderBy('id').limit(limit).execute();
    if (audit.length > 0) await this.db.deleteFrom('audit').where('id', 'in', audit.map((row) => Number(row.id))).execute();
    // Log pieces of runs that ended before the cut-off, a batch at a time; then the records of logs left empty.
    const chunks = await this.db
      .selectFrom('run_log_chunks as c')
      .innerJoin('runs as r', 'r.id', 'c.run_id')
      .select(['c.run_id', 'c.byte_offset'])
      .where('r.finished_at', 'is not', null)
      .where('r.finished_at', '<', cutoff)
      .limit(limit)
      .execute();
    const offsetsByRun = new Map<string, number[]>();
    for (const chunk of chunks) offsetsByRun.set(chunk.run_id, [...(offsetsByRun.get(chunk.run_id) ?? []), Number(chunk.byte_offset)]);
    for (const [runId, offsets] of offsetsByRun) {
      await this.db.deleteFrom('run_log_chunks').where('run_id', '=', runId).where('byte_offset', 'in', offsets).execute();
    }
    const emptied = await this.db
      .selectFrom('run_logs as l')
      .innerJoin('runs as r', 'r.id', 'l.run_id')
      .select('l.run_id')
      .where('r.finished_at', 'is not', null)
      .where('r.finished_at', '<', cutoff)
      .where(({ not, exists, selectFrom }) => not(exists(selectFrom('run_log_chunks as c').select('c.run_id').whereRef('c.run_id', '=', 'l.run_id'))))
      .limit(limit)
      .execute();
    if (emptied.length > 0) await this.db.deleteFrom('run_logs').where('run_id', 'in', emptied.map((row) => row.run_id)).execute();
    return { deliveries: deliveries.length, audit: audit.length, logChunks: chunks.length };
  }

  async countQueued(): Promise<number> {
    const row = await this.db.selectFrom('runs').select((eb) => eb.fn.countAll<number | string>().as('count')).where('state', '=', 'queued').executeTakeFirstOrThrow();
    return Number(row.count);
  }

  async listExpiredLeases(now: Date): Promise<Run[]> {
    const rows = await this.db
      .selectFrom('runs')
      .selectAll()
      .where('state', '=', 'running')
      .where((eb) => eb.or([eb('lease_until', 'is', null), eb('lease_until', '<', now.getTime())]))
      .execute();
    return rows.map(toRun);
  }

  /**
   * One statement, one round trip: the repository's running runs are counted and the run moved
   * together, so concurrent claims cannot both take the last slot. SQLite has a single writer, so an
   * UPDATE with the count in it is enough, and it joins the store's group commit; PostgreSQL's
   * task_mgmt_claim_run (migration 0012) counts under the repository's lock.
   */
  async claimRun(id: string, claim: RunClaim, now: Date): Promise<Run | 'busy' | null> {
    const at = now.getTime();
    const onlyWithoutNeeds = claim.onlyWithoutNeeds === true;
    const values = { workerId: claim.workerId, leaseUntil: claim.leaseUntil.getTime(), at, id, max: claim.maxRunningInRepo };
    const query =
      this.dialect === 'postgres'
        ? CompiledQuery.raw('select * from task_mgmt_claim_run($1, $2, $3, $4, $5, $6)', [id, values.workerId, values.leaseUntil, at, values.max, onlyWithoutNeeds])
        : this.queries.query(`claimRun:sqlite:${onlyWithoutNeeds}`, values, (marker) => {
            const { from, to } = runMoves.claim;
            let update = this.db
              .updateTable('runs')
              .set({ state: to, worker_id: marker('workerId'), lease_until: marker('leaseUntil'), started_at: marker('at'), updated_at: marker('at') })
              .where('id', '=', marker('id'))
              .where('state', 'in', [...from])
              .where(
                (eb) =>
                  eb
                    .selectFrom('runs as other')
                    .select((inner) => inner.fn.countAll<number>().as('running'))
                    .whereRef('other.repo_owner', '=', 'runs.repo_owner')
                    .whereRef('other.repo_name', '=', 'runs.repo_name')
                    .where('other.state', '=', 'running'),
                '<',
                // The run's own limit (spec.concurrency), when it has a lower one.
                sql<number>`min(${marker('max')}, coalesce(json_extract(${sql.ref('runs.spec')}, '$.concurrency'), ${marker('max')}))`,
              );
            if (onlyWithoutNeeds) update = update.where('needs', '=', '[]');
            return update.returningAll();
          });
    const { rows } = await this.run<Selectable<RunsTable>>(query);
    if (rows[0]) return toRun(rows[0]);
    // Nothing moved: the run is gone or no longer queued, needs other tasks, or its repository has no free slot.
    const current = await this.getRun(id);
    if (!current || !canMove(current.state, 'claim')) return null;
    if (onlyWithoutNeeds && current.needs.length > 0) return null;
    return 'busy';
  }

  async countAudit(query: { actor: string; actions: readonly string[]; since: Date }): Promise<number> {
    const row = await this.db
      .selectFrom('audit')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('actor', '=', query.actor)
      .where('action', 'in', [...query.actions])
      .where('at', '>=', query.since.getTime())
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  async admitCommand(command: CommandAdmission): Promise<AdmissionOutcome> {
    return this.db.transaction().execute(async (trx) => {
      await this.lockActor(trx, command.actor);
      const counted = trx
        .selectFrom('audit')
        .where('actor', '=', command.actor)
        .where('action', 'in', [...command.actions])
        .where('at', '>=', command.since.getTime());
      const totals = await counted
        .select((eb) => [eb.fn.countAll<number>().as('n'), eb.fn.sum<number>(eb.case().when('allowed', '=', 0).then(1).else(0).end()).as('refused')])
        .executeTakeFirstOrThrow();
      const count = Number(totals.n);
      if (count < command.limit) {
        await trx.insertInto('audit').values(auditRow(command.entry)).execute();
        return { admitted: true };
      }
      const newest = await counted.select('at').orderBy('at', 'desc').orderBy('id', 'desc').limit(command.limit).execute();
      await trx.insertInto('audit').values(auditRow(command.refusal)).execute();
      return { admitted: false, count, refused: Number(totals.refused ?? 0), newest: newest.map((row) => new Date(Number(row.at))) };
    });
  }

  /**
   * Serializes one actor's admissions inside a transaction. PostgreSQL: a transaction-scoped
   * advisory lock on the actor (READ COMMITTED alone lets two transactions count the same rows).
   * SQLite: one connection runs one transaction at a time in this process, and a write that
   * changes nothing takes the database's write lock before the count (waiting for another
   * process's writer up to busy_timeout), so that process cannot insert between count and insert.
   */
  private async lockActor(trx: Transaction<Database>, actor: string): Promise<void> {
    if (this.dialect === 'postgres') await sql`select pg_advisory_xact_lock(hashtext(${`task-mgmt:commands:${actor}`}))`.execute(trx);
    else await sql`delete from audit where 0`.execute(trx);
  }

  async recordApprovalWait(wait: ApprovalWait): Promise<void> {
    await this.db
      .insertInto('approval_waits')
      .values({
        repo: wait.repo,
        installation_id: wait.installationId,
        number: wait.number,
        sha: wait.sha,
        task: wait.task,
        check_run_id: wait.checkRunId,
        requested_by: wait.requestedBy,
        created_at: wait.createdAt.getTime(),
      })
      .execute();
  }

  async takeApprovalWaits(repo: string, number: number): Promise<ApprovalWait[]> {
    const rows = await this.db.deleteFrom('approval_waits').where('repo', '=', repo).where('number', '=', number).returningAll().execute();
    return rows.map((row) => ({
      repo: row.repo,
      installationId: Number(row.installation_id),
      number: row.number,
      sha: row.sha,
      task: row.task,
      checkRunId: Number(row.check_run_id),
      requestedBy: row.requested_by,
      createdAt: new Date(Number(row.created_at)),
    }));
  }

  async renewLease(id: string, workerId: string, leaseUntil: Date): Promise<boolean> {
    const query = this.queries.query('renewLease', { id, workerId, leaseUntil: leaseUntil.getTime() }, (marker) =>
      this.db
        .updateTable('runs')
        .set({ lease_until: marker('leaseUntil') })
        .where('id', '=', marker('id'))
        .where('state', '=', 'running')
        .where('worker_id', '=', marker('workerId')),
    );
    const result = await this.run(query);
    return Number(result.numAffectedRows) === 1;
  }

  async audit(entry: AuditEntry): Promise<void> {
    await this.db.insertInto('audit').values(auditRow(entry)).execute();
  }

  async listAudit(repo: string): Promise<AuditEntry[]> {
    const rows = await this.db.selectFrom('audit').selectAll().where('repo', '=', repo).orderBy('id', 'asc').execute();
    return rows.map((row) => ({
      at: new Date(Number(row.at)),
      repo: row.repo,
      number: row.number,
      actor: row.actor,
      action: row.action,
      allowed: row.allowed === 1,
      reason: row.reason,
      runId: row.run_id,
    }));
  }

  async startPin(pin: { runId: string; kind: PinKind; pinnedUntil: Date }, now: Date): Promise<void> {
    const key = addingKey(pin.runId, pin.kind);
    await this.db.transaction().execute(async (trx) => {
      await this.lockPinRoot(trx, key);
      const previous = await trx
        .deleteFrom('pins')
        .where('run_id', '=', pin.runId)
        .where('kind', '=', pin.kind)
        .returning(['root'])
        .executeTakeFirst();
      await trx
        .insertInto('pins')
        .values({ run_id: pin.runId, kind: pin.kind, root: key, complete: 0, pinned_until: pin.pinnedUntil.getTime(), created_at: now.getTime() })
        .execute();
      // A run tried again (its worker died after adding) gives up what its earlier attempt pinned.
      if (previous && previous.root !== key) await this.releaseRoot(trx, previous.root, now);
    });
  }

  async indexPinBlocks(pin: { runId: string; kind: PinKind }, blocks: readonly string[]): Promise<void> {
    const open = await this.db
      .selectFrom('pins')
      .select('run_id')
      .where('run_id', '=', pin.runId)
      .where('kind', '=', pin.kind)
      .where('complete', '=', 0)
      .executeTakeFirst();
    if (!open) throw new PinNotOpenError(pin.runId, pin.kind);
    const root = addingKey(pin.runId, pin.kind);
    for (let i = 0; i < blocks.length; i += BLOCK_ROWS_PER_INSERT) {
      const rows = [...new Set(blocks.slice(i, i + BLOCK_ROWS_PER_INSERT))].map((block) => ({ root, block }));
      await this.db.insertInto('pin_blocks').values(rows).onConflict((oc) => oc.doNothing()).execute();
    }
  }

  async completePin(pin: { runId: string; kind: PinKind; root: string }, now: Date): Promise<Pin> {
    const key = addingKey(pin.runId, pin.kind);
    return this.db.transaction().execute(async (trx) => {
      // Under the root's lock: a collection releasing the same root (pinned before by a run whose
      // pin just expired) either finishes first or sees this pin and keeps the index.
      await this.lockPinRoot(trx, pin.root);
      const updated = await trx
        .updateTable('pins')
        .set({ root: pin.root, complete: 1 })
        .where('run_id', '=', pin.runId)
        .where('kind', '=', pin.kind)
        .where('complete', '=', 0)
        .returningAll()
        .executeTakeFirst();
      if (!updated) throw new PinNotOpenError(pin.runId, pin.kind);
      await sql`insert into pin_blocks (root, block) select ${pin.root}, block from pin_blocks where root = ${key} on conflict do nothing`.execute(trx);
      await trx.insertInto('pin_blocks').values({ root: pin.root, block: pin.root }).onConflict((oc) => oc.doNothing()).execute();
      await trx.deleteFrom('pin_blocks').where('root', '=', key).execute();
      await this.updateRunPinnedUntil(trx, pin.runId);
      return toPin(updated);
    });
  }

  async listPins(runId: string): Promise<Pin[]> {
    const rows = await this.db.selectFrom('pins').selectAll().where('run_id', '=', runId).orderBy('kind', 'asc').execute();
    return rows.map(toPin);
  }

  async extendPins(runId: string, until: Date): Promise<Date | null> {
    const at = until.getTime();
    return this.db.transaction().execute(async (trx) => {
      await trx
        .updateTable('pins')
        .set((eb) => ({ pinned_until: eb.case().when('pinned_until', '<', at).then(at).else(eb.ref('pinned_until')).end() }))
        .where('run_id', '=', runId)
        .execute();
      return this.updateRunPinnedUntil(trx, runId);
    });
  }

  async livePinsHolding(block: string, now: Date, limit = 100): Promise<PinHolder[]> {
    const rows = await this.db
      .selectFrom('pin_blocks')
      .innerJoin('pins', 'pins.root', 'pin_blocks.root')
      .innerJoin('runs', 'runs.id', 'pins.run_id')
      .select(['pins.run_id', 'pins.kind', 'pins.root', 'pins.pinned_until', 'runs.repo_owner', 'runs.repo_name', 'runs.installation_id'])
      .where('pin_blocks.block', '=', block)
      .where('pins.complete', '=', 1)
      .where('pins.pinned_until', '>', now.getTime())
      .orderBy('pins.pinned_until', 'desc')
      .orderBy('pins.run_id', 'asc')
      .limit(limit)
      .execute();
    return rows.map((row) => ({
      runId: row.run_id,
      kind: row.kind as PinKind,
      root: row.root,
      pinnedUntil: new Date(Number(row.pinned_until)),
      repo: { owner: row.repo_owner, name: row.repo_name, installationId: Number(row.installation_id) },
    }));
  }

  async removeExpiredPins(now: Date, limit: number): Promise<{ removed: Pin[]; released: string[] }> {
    const at = now.getTime();
    const expired = await this.db
      .selectFrom('pins')
      .select(['run_id', 'kind'])
      .where('pinned_until', '<=', at)
      .orderBy('pinned_until', 'asc')
      .limit(limit)
      .execute();
    const removed: Pin[] = [];
    const released: string[] = [];
    for (const { run_id, kind } of expired) {
      await this.db.transaction().execute(async (trx) => {
        // Conditional on the expiry, so a pin extended since it was listed stays.
        const row = await trx
          .deleteFrom('pins')
          .where('run_id', '=', run_id)
          .where('kind', '=', kind)
          .where('pinned_until', '<=', at)
          .returningAll()
          .executeTakeFirst();
        if (!row) return;
        removed.push(toPin(row));
        if ((await this.releaseRoot(trx, row.root, now)) && row.complete === 1) released.push(row.root);
      });
    }
    return { removed, released };
  }

  async garbageBlocks(markedBefore: Date, limit: number): Promise<string[]> {
    const at = markedBefore.getTime();
    for (;;) {
      const rows = await this.db
        .selectFrom('pin_garbage as g')
        .select((eb) => [
          'g.block',
          eb
            .exists(eb.selectFrom('pin_blocks as o').innerJoin('pins as p', 'p.root', 'o.root').select('o.block').whereRef('o.block', '=', 'g.block'))
            .as('held'),
        ])
        .where('g.marked_at', '<=', at)
        .orderBy('g.marked_at', 'asc')
        .orderBy('g.block', 'asc')
        .limit(limit)
        .execute();
      const held = rows.filter((row) => Boolean(row.held)).map((row) => row.block);
      // A block some pin holds again (a later add wrote it too) is no longer garbage.
      if (held.length > 0) await this.forgetGarbage(held);
      const garbage = rows.filter((row) => !row.held).map((row) => row.block);
      if (garbage.length > 0 || rows.length < limit) return garbage;
    }
  }

  async forgetGarbage(blocks: readonly string[]): Promise<void> {
    for (let i = 0; i < blocks.length; i += BLOCK_ROWS_PER_INSERT) {
      await this.db.deleteFrom('pin_garbage').where('block', 'in', blocks.slice(i, i + BLOCK_ROWS_PER_INSERT)).execute();
    }
  }

  async takeLease(name: string, holder: string, until: Date, now: Date): Promise<boolean> {
    const result = await this.db
      .insertInto('named_leases')
      .values({ name, holder, held_until: until.getTime() })
      .onConflict((oc) =>
        oc
          .column('name')
          .doUpdateSet({ holder, held_until: until.getTime() })
          .where((eb) => eb.or([eb('named_leases.holder', '=', holder), eb('named_leases.held_until', '<=', now.getTime())])),
      )
      .executeTakeFirst();
    return Number(result.numInsertedOrUpdatedRows ?? 0n) === 1;
  }

  async releaseLease(name: string, holder: string): Promise<void> {
    await this.db.deleteFrom('named_leases').where('name', '=', name).where('holder', '=', holder).execute();
  }

  async keepCheckUpdate(runId: string, report: unknown, now: Date): Promise<void> {
    const row = { run_id: runId, report: JSON.stringify(report), kept_at: now.getTime(), attempts: 0 };
    await this.db
      .insertInto('check_outbox')
      .values(row)
      .onConflict((oc) => oc.column('run_id').doUpdateSet({ report: row.report, kept_at: row.kept_at, attempts: 0 }))
      .execute();
  }

  async listCheckUpdates(limit: number): Promise<PendingCheckUpdate[]> {
    const rows = await this.db.selectFrom('check_outbox').selectAll().orderBy('kept_at').orderBy('run_id').limit(limit).execute();
    return rows.map((row) => ({ runId: row.run_id, report: JSON.parse(row.report) as unknown, keptAt: new Date(Number(row.kept_at)), attempts: Number(row.attempts) }));
  }

  async checkUpdateFailed(runId: string): Promise<void> {
    await this.db
      .updateTable('check_outbox')
      .set((eb) => ({ attempts: eb('attempts', '+', 1) }))
      .where('run_id', '=', runId)
      .execute();
  }

  async dropCheckUpdate(runId: string, keptAt: Date): Promise<void> {
    await this.db.deleteFrom('check_outbox').where('run_id', '=', runId).where('kept_at', '<=', keptAt.getTime()).execute();
  }

  /**
   * When no pin names `root` any more: marks each block of its index that no other pin's index
   * lists as garbage at `now` (a new mark, so a block released again waits its full grace), and
   * drops the index. True when the root was released.
   */
  private async releaseRoot(trx: Transaction<Database>, root: string, now: Date): Promise<boolean> {
    await this.lockPinRoot(trx, root);
    const pinned = await trx.selectFrom('pins').select('run_id').where('root', '=', root).limit(1).executeTakeFirst();
    if (pinned) return false;
    await sql`insert into pin_garbage (block, marked_at)
      select b.block, ${now.getTime()} from pin_blocks b
      where b.root = ${root}
        and not exists (select 1 from pin_blocks o join pins p on p.root = o.root where o.block = b.block and o.root <> ${root})
      on conflict (block) do update set marked_at = excluded.marked_at`.execute(trx);
    await trx.deleteFrom('pin_blocks').where('root', '=', root).execute();
    return true;
  }

  /** The run's `pinned_until` follows the latest of its complete pins; null (and unchanged) when it has none. */
  private async updateRunPinnedUntil(trx: Transaction<Database>, runId: string): Promise<Date | null> {
    const { latest } = await trx
      .selectFrom('pins')
      .select((eb) => eb.fn.max('pinned_until').as('latest'))
      .where('run_id', '=', runId)
      .where('complete', '=', 1)
      .executeTakeFirstOrThrow();
    if (latest === null || latest === undefined) return null;
    await trx.updateTable('runs').set({ pinned_until: Number(latest) }).where('id', '=', runId).execute();
    return new Date(Number(latest));
  }

  /**
   * Serializes the changes to one root's pins and index inside a transaction. PostgreSQL: a
   * transaction-scoped advisory lock on the root. SQLite: a write that changes nothing takes the
   * database's write lock first, so no other writer comes between the check and the change.
   */
  private async lockPinRoot(trx: Transaction<Database>, root: string): Promise<void> {
    if (this.dialect === 'postgres') await sql`select pg_advisory_xact_lock(hashtext(${`task-mgmt:pin:${root}`}))`.execute(trx);
    else await sql`delete from pin_garbage where 0`.execute(trx);
  }

  // The log model (head and tail kept, one cut between them) is described on RunLogs.
  async appendLog(runId: string, chunk: { offset: number; bytes: Uint8Array }, maxBytes: number): Promise<LogInfo> {
    const length = chunk.bytes.byteLength;
    if (length > LOG_CHUNK_MAX_BYTES) throw new RangeError(`a log chunk holds at most ${LOG_CHUNK_MAX_BYTES} bytes, got ${length}`);
    return this.db.transaction().execute(async (trx) => {
      // Creating the row first takes SQLite's write lock before anything is read (a worker in
      // another process may be appending); PostgreSQL then locks the row until COMMIT.
      await trx
        .insertInto('run_logs')
        .values({ run_id: runId, size: 0, head_end: 0, tail_start: 0 })
        .onConflict((oc) => oc.column('run_id').doNothing())
        .execute();
      let select = trx.selectFrom('run_logs').selectAll().where('run_id', '=', runId);
      if (this.dialect === 'postgres') select = select.forUpdate();
      const log = toLogState(await select.executeTakeFirstOrThrow());
      if (chunk.offset >= 0 && chunk.offset + length <= log.size) return toLogInfo(log); // a repeated append
      if (chunk.offset !== log.size) throw new LogOffsetError(runId, chunk.offset, log.size);

      const size = log.size + length;
      let { headEnd, tailStart } = log;
      await trx
        .insertInto('run_log_chunks')
        .values({ run_id: runId, byte_offset: chunk.offset, bytes: Buffer.from(chunk.bytes.buffer, chunk.bytes.byteOffset, length) })
        .execute();
      if (headEnd === log.size && chunk.offset < Math.floor(maxBytes / 2)) {
        // Still the head: it grows, and nothing is cut.
        headEnd = size;
        tailStart = size;
      } else {
        // The tail keeps its newest chunks that fit beside the head, and always the newest one.
        const budget = Math.max(0, maxBytes - headEnd);
        if (size - tailStart > budget) {
          const kept = await trx
            .selectFrom('run_log_chunks')
            .select((eb) => eb.fn.min<number>('byte_offset').as('first'))
            .where('run_id', '=', runId)
            .where('byte_offset', '>=', size - budget)
            .executeTakeFirst();
          const first = kept?.first == null ? chunk.offset : Number(kept.first);
          if (first > tailStart) {
            await trx.deleteFrom('run_log_chunks').where('run_id', '=', runId).where('byte_offset', '>=', tailStart).where('byte_offset', '<', first).execute();
            tailStart = first;
          }
        }
      }
      await trx.updateTable('run_logs').set({ size, head_end: headEnd, tail_start: tailStart }).where('run_id', '=', runId).execute();
      return toLogInfo({ size, headEnd, tailStart });
    });
  }

  async readLog(runId: string, offset: number, limit: number = LOG_CHUNK_MAX_BYTES): Promise<LogRead> {
    const most = Math.max(0, Math.min(Math.floor(limit), LOG_CHUNK_MAX_BYTES));
    // One snapshot for both queries: a writer dropping tail chunks in between would leave a hole.
    const transaction = this.dialect === 'postgres' ? this.db.transaction().setIsolationLevel('repeatable read') : this.db.transaction();
    return transaction.execute(async (trx) => {
      const row = await trx.selectFrom('run_logs').selectAll().where('run_id', '=', runId).executeTakeFirst();
      const info = row ? toLogInfo(toLogState(row)) : { size: 0, cut: null };
      let start = Math.max(0, Math.floor(offset));
      if (info.cut && start >= info.cut.from && start < info.cut.to) start = info.cut.to;
      let end = Math.min(info.size, start + most);
      if (info.cut && start < info.cut.from) end = Math.min(end, info.cut.from);
      if (end <= start) return { ...info, offset: start, bytes: new Uint8Array(0) };
      const rows = await trx
        .selectFrom('run_log_chunks')
        .select(['byte_offset', 'bytes'])
        .where('run_id', '=', runId)
        .where('byte_offset', '>=', (eb) =>
          eb.selectFrom('run_log_chunks').select((inner) => inner.fn.max<number>('byte_offset').as('first')).where('run_id', '=', runId).where('byte_offset', '<=', start),
        )
        .where('byte_offset', '<', end)
        .orderBy('byte_offset', 'asc')
        .execute();
      const parts: Uint8Array[] = [];
      let at = start;
      for (const { byte_offset: chunkOffset, bytes } of rows) {
        const from = Number(chunkOffset);
        if (from > at) break; // not stored: cannot happen within one snapshot
        const slice = bytes.subarray(at - from, Math.min(bytes.byteLength, end - from));
        parts.push(slice);
        at += slice.byteLength;
      }
      return { ...info, offset: start, bytes: Buffer.concat(parts) };
    });
  }

  async logInfo(runId: string): Promise<LogInfo> {
    const row = await this.db.selectFrom('run_logs').selectAll().where('run_id', '=', runId).executeTakeFirst();
    return row ? toLogInfo(toLogState(row)) : { size: 0, cut: null };
  }

  async close(): Promise<void> {
    await this.db.destroy();
  }
}

function toPin(row: Selectable<PinsTable>): Pin {
  return {
    runId: row.run_id,
    kind: row.kind as PinKind,
    root: row.complete === 1 ? row.root : null,
    pinnedUntil: new Date(Number(row.pinned_until)),
  };
}

interface LogState {
  size: number;
  headEnd: number;
  tailStart: number;
}

const toLogState = (row: Selectable<RunLogsTable>): LogState => ({ size: Number(row.size), headEnd: Number(row.head_end), tailStart: Number(row.tail_start) });

const toLogInfo = (log: LogState): LogInfo => ({ size: log.size, cut: log.tailStart > log.headEnd ? { from: log.headEnd, to: log.tailStart } : null });

function auditRow(entry: AuditEntry) {
  return {
    at: entry.at.getTime(),
    repo: entry.repo,
    number: entry.number,
    actor: entry.actor,
    action: entry.action,
    allowed: entry.allowed ? 1 : 0,
    reason: entry.reason,
    run_id: entry.runId,
  };
}

/** A marker for each of `values`' keys, in place of its value. */
function markers<V extends Record<string, unknown>>(values: V, marker: MarkerOf<V>): { [K in keyof V]: never } {
  return Object.fromEntries(Object.keys(values).map((key) => [key, marker(key)])) as { [K in keyof V]: never };
}

function patchColumns(patch: RunPatch): Partial<RunsTable> {
  const columns: Partial<RunsTable> = {};
  if (patch.checkRunId !== undefined) columns.check_run_id = patch.checkRunId;
  if (patch.exitCode !== undefined) columns.exit_code = patch.exitCode;
  if (patch.outputCid !== undefined) columns.output_cid = patch.outputCid;
  if (patch.outputFiles !== undefined) columns.output_files = JSON.stringify(patch.outputFiles);
  if (patch.provenanceCid !== undefined) columns.provenance_cid = patch.provenanceCid;
  if (patch.progress !== undefined) columns.progress = patch.progress === null ? null : JSON.stringify(patch.progress);
  if (patch.metadata !== undefined) columns.metadata = JSON.stringify(patch.metadata);
  if (patch.error !== undefined) columns.error = patch.error;
  if (patch.logTail !== undefined) columns.log_tail = patch.logTail;
  return columns;
}

/** Runs recorded before reviewers were kept hold review ids alone; those were approvals of the run's SHA. */
function parseApprovals(text: string, sha: string): Approval[] {
  return (JSON.parse(text) as (number | Approval)[]).map((approval) => (typeof approval === 'number' ? { reviewId: approval, reviewer: null, commit: sha } : approval));
}

const optionalDate = (value: number | null) => (value === null ? null : new Date(Number(value)));
const optionalNumber = (value: number | null) => (value === null ? null : Number(value));

/** Built once: building a zod schema costs more than parsing with it, and every row read parses one. */
const outputFilesSchema = outputFileSchema.array();

function toRun(row: Selectable<RunsTable>): Run {
  return {
    id: row.id,
    repo: { owner: row.repo_owner, name: row.repo_name, installationId: Number(row.installation_id) },
    number: optionalNumber(row.number),
    isPullRequest: row.is_pull_request === 1,
    sha: row.sha,
    task: row.task,
    taskType: row.task_type,
    dockerfile: row.dockerfile,
    params: JSON.parse(row.params) as Record<string, string>,
    requestedBy: row.requested_by,
    requesterKind: row.requester_kind as Run['requesterKind'],
    requiredRole: row.required_role as Run['requiredRole'],
    trigger: row.trigger as Run['trigger'],
    approvals: parseApprovals(row.approvals, row.sha),
    manifestDigest: row.manifest_digest,
    spec: runSpecSchema.parse(JSON.parse(row.spec)),
    needs: JSON.parse(row.needs) as string[],
    metadata: JSON.parse(row.metadata) as Record<string, unknown>,
    state: row.state as RunState,
    checkRunId: optionalNumber(row.check_run_id),
    commentId: optionalNumber(row.comment_id),
    exitCode: optionalNumber(row.exit_code),
    outputCid: row.output_cid,
    outputFiles: outputFilesSchema.parse(JSON.parse(row.output_files)),
    pinnedUntil: optionalDate(row.pinned_until),
    provenanceCid: row.provenance_cid,
    // Absent until the task reports any, as on a run made before progress was kept.
    ...(row.progress === null || row.progress === undefined ? {} : { progress: JSON.parse(row.progress) as RunProgress }),
    error: row.error,
    logTail: row.log_tail,
    workerId: row.worker_id,
    leaseUntil: optionalDate(row.lease_until),
    createdAt: new Date(Number(row.created_at)),
    queuedAt: new Date(Number(row.queued_at)),
    startedAt: optionalDate(row.started_at),
    finishedAt: optionalDate(row.finished_at),
    updatedAt: new Date(Number(row.updated_at)),
  };
}
