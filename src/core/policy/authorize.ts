/**
 * The authorization decision for one command, as a pure function of what GitHub told us.
 * Callers fetch the facts; this decides and explains. Every refusal says what is missing.
 */
import { roleAtLeast, roleFromPermission, type RequiredRole, type Role } from './roles.js';
import type { CollaboratorPermission } from '../../ports/repo-host.js';

export interface AuthorizeInput {
  actor: string;
  /** The actor's permission on the repository, as GitHub reported it. */
  permission: CollaboratorPermission;
  /** Least role the task's manifest asks for (default write). */
  required?: RequiredRole;
}

export type Decision =
  | { allowed: true; role: Role; reason: string }
  | { allowed: false; role: Role; reason: string };

export function authorize(input: AuthorizeInput): Decision {
  const required = input.required ?? 'write';
  const role = roleFromPermission(input.permission);
  if (!roleAtLeast(role, required)) {
    return {
      allowed: false,
      role,
      reason:
        `@${input.actor} has the ${role} role on this repository; running tasks needs ${required} or higher. ` +
        `Ask a maintainer to comment \`/run\` instead.`,
    };
  }
  return { allowed: true, role, reason: `@${input.actor} has the ${role} role (${required} or higher is needed)` };
}
