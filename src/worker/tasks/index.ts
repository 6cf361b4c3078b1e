/**
 * What the worker gives every task type to reach the outside: the guarded fetch and the mailer
 * (`ctx.fetch`, `ctx.mail`). Built here, from tasks/shared/, and nowhere else: task types import
 * no network module themselves, which `npm run boundaries` checks
 * (`task-types-network-through-context` in .dependency-cruiser.cjs).
 */
import { PermanentError } from '../../ports/errors.js';
import type { AnyTaskType, TaskContext, TaskFetch, TaskSettings } from '../../ports/task-type.js';
import { FetchGuard } from '../../../tasks/shared/safe-fetch.js';
import { smtpMailer } from '../../../tasks/shared/smtp-mailer.js';

/** For a type declared `network: false`: every fetch is refused, saying why. */
function refusingFetch(type: AnyTaskType): TaskFetch {
  return {
    get: async (url) => {
      throw new PermanentError(`refused: ${type.name} is declared network: false, so it may not fetch ${String(url)}`);
    },
  };
}

/** The network part of one run's task context. */
export function taskNetwork(type: AnyTaskType, settings: TaskSettings): Pick<TaskContext, 'fetch' | 'mail'> {
  return {
    fetch: type.network ? new FetchGuard({ allowPrivateAddresses: settings.allowPrivateAddresses }) : refusingFetch(type),
    ...(settings.smtpUrl ? { mail: smtpMailer(settings.smtpUrl) } : {}),
  };
}
