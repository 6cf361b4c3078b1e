import { describe, expect, it } from 'vitest';
import { roleAtLeast, roleFromPermission, type Role } from './roles.js';
import type { CollaboratorPermission } from '../../ports/repo-host.js';

const flags = (set: string[]) => ({
  admin: set.includes('admin'),
  maintain: set.includes('maintain'),
  push: set.includes('push'),
  triage: set.includes('triage'),
  pull: set.includes('pull'),
});

describe('roleFromPermission', () => {
  it.each<[string, CollaboratorPermission, Role]>([
    ['admin', { permission: 'admin', roleName: 'admin', flags: flags(['admin', 'maintain', 'push', 'triage', 'pull']) }, 'admin'],
    ['maintain (reported as write)', { permission: 'write', roleName: 'maintain', flags: flags(['maintain', 'push', 'triage', 'pull']) }, 'maintain'],
    ['write', { permission: 'write', roleName: 'write', flags: flags(['push', 'triage', 'pull']) }, 'write'],
    ['triage (reported as read)', { permission: 'read', roleName: 'triage', flags: flags(['triage', 'pull']) }, 'triage'],
    ['read', { permission: 'read', roleName: 'read', flags: flags(['pull']) }, 'read'],
    ['none', { permission: 'none', roleName: null, flags: null }, 'none'],
    ['write without flags', { permission: 'write', roleName: 'write', flags: null }, 'write'],
    ['admin without flags', { permission: 'admin', roleName: null, flags: null }, 'admin'],
    ['custom role with push', { permission: 'write', roleName: 'release-managers', flags: flags(['push', 'pull']) }, 'write'],
    ['custom role named admin with read only', { permission: 'read', roleName: 'admin', flags: flags(['pull']) }, 'read'],
    ['unknown permission string', { permission: 'superuser', roleName: 'superuser', flags: null }, 'none'],
  ])('%s', (_label, permission, role) => {
    expect(roleFromPermission(permission)).toBe(role);
  });
});

describe('roleAtLeast', () => {
  it.each<[Role, Role, boolean]>([
    ['admin', 'write', true],
    ['maintain', 'write', true],
    ['write', 'write', true],
    ['triage', 'write', false],
    ['read', 'write', false],
    ['none', 'write', false],
    ['write', 'maintain', false],
    ['maintain', 'admin', false],
    ['admin', 'admin', true],
  ])('%s at least %s is %s', (role, required, expected) => {
    expect(roleAtLeast(role, required)).toBe(expected);
  });
});
