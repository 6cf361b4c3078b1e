/**
 * Repository roles, from GitHub's collaborator-permission API.
 *
 * We gate on the legacy `permission` field and the `user.permissions` flags, never on `role_name`
 * (a custom role's free-text name) nor on the webhook's `author_association` (which says nothing
 * about write access). GitHub reports maintain as `write` and triage as `read` in `permission`;
 * the flags tell them apart when present.
 * https://docs.github.com/en/rest/collaborators/collaborators#get-repository-permissions-for-a-user
 */
import type { CollaboratorPermission } from '../../ports/repo-host.js';

export const roles = ['none', 'read', 'triage', 'write', 'maintain', 'admin'] as const;
export type Role = (typeof roles)[number];

/** Roles a manifest may require to `/run`. */
export type { RequiredRole } from '../runs/run.js';
import type { RequiredRole } from '../runs/run.js';

export function roleFromPermission(permission: CollaboratorPermission): Role {
  const flags = permission.flags;
  if (flags) {
    if (flags.admin) return 'admin';
    if (flags.maintain) return 'maintain';
    if (flags.push) return 'write';
    if (flags.triage) return 'triage';
    if (flags.pull) return 'read';
  }
  switch (permission.permission) {
    case 'admin':
      return 'admin';
    case 'maintain':
      return 'maintain';
    case 'write':
      return 'write';
    case 'triage':
      return 'triage';
    case 'read':
      return 'read';
    default:
      return 'none';
  }
}

export function roleAtLeast(role: Role, required: Role): boolean {
  return roles.indexOf(role) >= roles.indexOf(required);
}
