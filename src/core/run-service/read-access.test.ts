/** Who may see which runs, on an in-memory code host: every rule a row, then the cache. */
import { describe, expect, it } from 'vitest';
import { MemoryRepoHost } from '../../adapters/local/memory-repo-host.js';
import { RetryableError } from '../../ports/errors.js';
import type { RepoPermission, RepoVisibility } from '../../ports/repo-host.js';
import type { RepoRef, Requester, Run } from '../runs/run.js';
import { ReadAccess } from './read-access.js';

const repo: RepoRef = { owner: 'octo-org', name: 'archive', installationId: 7 };
const user = (login: string): Requester => ({ kind: 'user', login });

function access(host: MemoryRepoHost, options: { keepMs?: number; maxEntries?: number } = {}) {
  let clock = Date.parse('2026-12-01T10:00:00Z');
  const reads = new ReadAccess({ hostFor: async () => host, now: () => new Date(clock), ...options });
  return { reads, advance: (ms: number) => (clock += ms) };
}

describe('ReadAccess', () => {
  it.each<[string, RepoVisibility, RepoPermission | null, Requester, boolean]>([
    ['a stranger, private repository', 'private', null, user('stranger'), false],
    ['a stranger, internal repository', 'internal', null, user('stranger'), false],
    ['a stranger, public repository', 'public', null, user('stranger'), true],
    ['a reader, private repository', 'private', 'read', user('someone'), true],
    ['a triager, private repository', 'private', 'triage', user('someone'), true],
    ['an admin, internal repository', 'internal', 'admin', user('someone'), true],
    ['a service token, private repository', 'private', null, { kind: 'service', login: 'service:0123' }, true],
    ['the App, private repository', 'private', null, { kind: 'app', login: 'schedule' }, true],
  ])('%s: %s', async (_name, visibility, role, requester, expected) => {
    const host = new MemoryRepoHost().setVisibility(visibility);
    if (role) host.setRole(requester.login, role);
    expect(await access(host).reads.canRead(requester, repo)).toBe(expected);
  });

  it('asks nothing for service tokens, and only the visibility for a public repository', async () => {
    const host = new MemoryRepoHost();
    await access(host).reads.canRead({ kind: 'service', login: 'service:0123' }, repo);
    expect(host.calls).toStrictEqual([]);
    host.setVisibility('public');
    await access(host).reads.canRead(user('stranger'), repo);
    expect(host.calls.map((call) => call.what)).toStrictEqual(['getVisibility']);
  });

  it('filters runs by repository, keeping their order, with one question per repository', async () => {
    const hosts = { open: new MemoryRepoHost().setVisibility('public'), secret: new MemoryRepoHost() };
    const reads = new ReadAccess({ hostFor: async (r) => hosts[r.name as 'open' | 'secret'], now: () => new Date() });
    const run = (id: string, name: 'open' | 'secret') => ({ id, repo: { ...repo, name } }) as Run;
    const runs = [run('a', 'secret'), run('b', 'open'), run('c', 'secret'), run('d', 'open')];
    expect((await reads.readable(user('stranger'), runs)).map((r) => r.id)).toStrictEqual(['b', 'd']);
    expect(hosts.secret.calls.map((call) => call.what)).toStrictEqual(['getVisibility', 'getPermission stranger']);
  });

  it('keeps an answer a minute per user and repository, then asks again', async () => {
    const host = new MemoryRepoHost().setRole('reader', 'read');
    const { reads, advance } = access(host);
    expect(await reads.canRead(user('reader'), repo)).toBe(true);
    host.setRole('reader', 'none');
    advance(59_000);
    expect(await reads.canRead(user('READER'), repo)).toBe(true);
    expect(await reads.canRead(user('other'), repo)).toBe(false);
    advance(2_000);
    expect(await reads.canRead(user('reader'), repo)).toBe(false);
    expect(host.calls.filter((call) => call.what.startsWith('getPermission')).map((call) => call.what)).toStrictEqual([
      'getPermission reader',
      'getPermission other',
      'getPermission reader',
    ]);
  });

  it('keeps at most maxEntries answers, dropping the oldest', async () => {
    const host = new MemoryRepoHost();
    const { reads } = access(host, { maxEntries: 2 });
    for (const login of ['a', 'b', 'c', 'a']) await reads.canRead(user(login), repo);
    // `a` was dropped when `c` came, so it was asked again.
    expect(host.calls.filter((call) => call.what.startsWith('getPermission')).length).toBe(4);
  });

  it('throws when GitHub cannot answer now, and does not keep the failure', async () => {
    const host = new MemoryRepoHost().setRole('reader', 'read');
    const { reads } = access(host);
    host.failNext('getPermission', new RetryableError('GitHub did not answer (502)'));
    await expect(reads.canRead(user('reader'), repo)).rejects.toThrow('GitHub did not answer');
    expect(await reads.canRead(user('reader'), repo)).toBe(true);
  });

  it('says no when GitHub’s final answer is a failure (the App no longer sees the repository)', async () => {
    const host = new MemoryRepoHost().setRole('reader', 'read');
    host.failNext('getVisibility', Object.assign(new Error('Not Found'), { status: 404 }));
    expect(await access(host).reads.canRead(user('reader'), repo)).toBe(false);
  });
});
