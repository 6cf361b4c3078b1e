/**
 * A database as a release before migration 0004 left it, for the SQL stores' tests: migrated up
 * to 0003, with one run asked for by a GitHub user and one by a service token. Opening a store
 * on it must upgrade it and tell the two apart.
 */
import { Migrator, sql, type Kysely } from 'kysely';
import { expect } from 'vitest';
import { migrationProvider, migrationTables, type SqlDialectName } from '../../src/adapters/store/migrations.js';
import type { RunStore } from '../../src/ports/run-store.js';

const runsBefore0004 = [
  { id: 'old-user-run', requestedBy: 'mona', approvals: '[5501]' },
  { id: 'old-service-run', requestedBy: 'service:0123abcd', approvals: '[]' },
];

export async function recordRunsBefore0004(db: Kysely<unknown>, dialect: SqlDialectName, schema?: string): Promise<void> {
  // With `schema`, Kysely's bookkeeping is looked for there only, not in another test's schema.
  const { error } = await new Migrator({ db, provider: migrationProvider(dialect), ...migrationTables, ...(schema ? { migrationTableSchema: schema } : {}) }).migrateTo(
    '0003-task-specs-and-needs',
  );
  if (error) throw error;
  for (const run of runsBefore0004) {
    await sql`insert into runs (id, repo_owner, repo_name, installation_id, number, is_pull_request, sha, task, task_type,
        dockerfile, params, requested_by, "trigger", state, created_at, queued_at, updated_at, approvals)
      values (${run.id}, 'octo-org', 'archive', 4242, 17, 1, ${'a'.repeat(40)}, 'snapshot', 'dockerfile',
        'Dockerfile', '{}', ${run.requestedBy}, 'comment', 'queued', 1, 1, 1, ${run.approvals})`.execute(db);
  }
}

export async function expectUpgradedRuns(store: Pick<RunStore, 'getRun'>): Promise<void> {
  // Approvals were review ids alone: the reviewer is not known, the commit was the run's SHA.
  expect(await store.getRun('old-user-run')).toMatchObject({
    requestedBy: 'mona',
    requesterKind: 'user',
    requiredRole: 'write',
    approvals: [{ reviewId: 5501, reviewer: null, commit: 'a'.repeat(40) }],
    provenanceCid: null,
  });
  expect(await store.getRun('old-service-run')).toMatchObject({ requestedBy: 'service:0123abcd', requesterKind: 'service', requiredRole: 'write' });
}
