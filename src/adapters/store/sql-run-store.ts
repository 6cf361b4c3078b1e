/**
 * RunStore over any SQL database Kysely speaks: every section of the port over one database. The
 * SQLite and PostgreSQL adapters only choose the dialect; the queries live here once.
 */
import { Migrator, sql, type Kysely, type Selectable, type Transaction } from 'kysely';
import { canMove, isFinal, outputFileSchema, runMoves, runSpecSchema, type Run, type RunMove, type RunState } from '../../core/runs/run.js';
import type { AdmissionOutcome, ApprovalWait, AuditEntry, CommandAdmission, InboxDelivery, ListRunsQuery, LogInfo, LogRead, MoveGuard, MovePatch, NewRun, RunPatch, RunStore } from '../../ports/run-store.js';
import { LOG_CHUNK_MAX_BYTES, LogOffsetError } from '../../ports/run-store.js';
import { migrationProvider, migrationTables, type SqlDialectName } from './migrations.js';
import type { Database, RunLogsTable, RunsTable } from './schema.js';

export class RunNotFoundError extends Error {
  override readonly name = 'RunNotFoundError';
  constructor(readonly runId: string) {
    super(`run ${runId} does not exist`);
  }
}

export class SqlRunStore implements RunStore {
  constructor(
    protected readonly db: Kysely<Database>,
    private readonly dialect: SqlDialectName,
  ) {}

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

  async createRun(run: NewRun, now: Date): Promise<Run> {
    const at = now.getTime();
    await this.db
      .insertInto('runs')
      .values({
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
      })
      .execute();
    return this.mustGet(run.id);
  }

  async getRun(id: string): Promise<Run | null> {
    const row = await this.db.selectFrom('runs').selectAll().where('id', '=', id).executeTakeFirst();
    return row ? toRun(row) : null;
  }

  async updateRun(id: string, patch: RunPatch, now: Date): Promise<Run> {
    const result = await this.db
      .updateTable('runs')
      .set({ ...patchColumns(patch), updated_at: now.getTime() })
      .where('id', '=', id)
      .executeTakeFirst();
    if (Number(result.numUpdatedRows) === 0) throw new RunNotFoundError(id);
    return this.mustGet(id);
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
    let update = this.db
      .updateTable('runs')
      .set(columns)
      .where('id', '=', id)
      .where('state', 'in', [...from]);
    if (guard.heldBy !== undefined) update = update.where('worker_id', '=', guard.heldBy);
    const result = await update.executeTakeFirst();
    if (Number(result.numUpdatedRows) === 0) return null;
    return this.mustGet(id);
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

  async listExpiredLeases(now: Date): Promise<Run[]> {
    const rows = await this.db
      .selectFrom('runs')
      .selectAll()
      .where('state', '=', 'running')
      .where((eb) => eb.or([eb('lease_until', 'is', null), eb('lease_until', '<', now.getTime())]))
      .execute();
    return rows.map(toRun);
  }

  async claimRun(
    id: string,
    claim: { workerId: string; leaseUntil: Date; maxRunningInRepo: number },
    now: Date,
  ): Promise<Run | 'busy' | null> {
    const { from, to } = runMoves.claim;
    const run = await this.getRun(id);
    if (!run || !canMove(run.state, 'claim')) return null;
    const at = now.getTime();
    const claimed = await this.db.transaction().execute(async (trx) => {
      // Count and move under the repository's lock, so concurrent claims cannot both see a free slot.
      await this.lockRepository(trx, `${run.repo.owner}/${run.repo.name}`);
      const { running } = await trx
        .selectFrom('runs')
        .select((eb) => eb.fn.countAll<number>().as('running'))
        .where('repo_owner', '=', run.repo.owner)
        .where('repo_name', '=', run.repo.name)
        .where('state', '=', 'running')
        .executeTakeFirstOrThrow();
      if (Number(running) >= claim.maxRunningInRepo) return 'busy' as const;
      const result = await trx
        .updateTable('runs')
        .set({ state: to, worker_id: claim.workerId, lease_until: claim.leaseUntil.getTime(), started_at: at, updated_at: at })
        .where('id', '=', id)
        .where('state', 'in', [...from])
        .executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    });
    if (claimed === 'busy') {
      const current = await this.getRun(id);
      return current && canMove(current.state, 'claim') ? 'busy' : null;
    }
    return claimed ? this.mustGet(id) : null;
  }

  /** Serializes claims per repository inside a transaction; SQLite already has a single writer. */
  protected async lockRepository(_trx: Transaction<Database>, _repository: string): Promise<void> {}

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
    const result = await this.db
      .updateTable('runs')
      .set({ lease_until: leaseUntil.getTime() })
      .where('id', '=', id)
      .where('state', '=', 'running')
      .where('worker_id', '=', workerId)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
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

  private async mustGet(id: string): Promise<Run> {
    const run = await this.getRun(id);
    if (!run) throw new RunNotFoundError(id);
    return run;
  }
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

function patchColumns(patch: RunPatch): Partial<RunsTable> {
  const columns: Partial<RunsTable> = {};
  if (patch.checkRunId !== undefined) columns.check_run_id = patch.checkRunId;
  if (patch.exitCode !== undefined) columns.exit_code = patch.exitCode;
  if (patch.outputCid !== undefined) columns.output_cid = patch.outputCid;
  if (patch.outputFiles !== undefined) columns.output_files = JSON.stringify(patch.outputFiles);
  if (patch.metadata !== undefined) columns.metadata = JSON.stringify(patch.metadata);
  if (patch.error !== undefined) columns.error = patch.error;
  if (patch.logTail !== undefined) columns.log_tail = patch.logTail;
  return columns;
}

const optionalDate = (value: number | null) => (value === null ? null : new Date(Number(value)));
const optionalNumber = (value: number | null) => (value === null ? null : Number(value));

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
    approvals: JSON.parse(row.approvals) as number[],
    manifestDigest: row.manifest_digest,
    spec: runSpecSchema.parse(JSON.parse(row.spec)),
    needs: JSON.parse(row.needs) as string[],
    metadata: JSON.parse(row.metadata) as Record<string, unknown>,
    state: row.state as RunState,
    checkRunId: optionalNumber(row.check_run_id),
    commentId: optionalNumber(row.comment_id),
    exitCode: optionalNumber(row.exit_code),
    outputCid: row.output_cid,
    outputFiles: outputFileSchema.array().parse(JSON.parse(row.output_files)),
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
