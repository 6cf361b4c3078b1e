/**
 * The checks API's own validation, answered with 422 as GitHub does.
 * https://docs.github.com/en/rest/checks/runs#create-a-check-run
 */

export interface ValidationError {
  resource: 'CheckRun';
  field: string;
  code: 'missing_field' | 'invalid' | 'custom';
  message?: string;
}

const STATUSES = ['queued', 'in_progress', 'completed', 'waiting', 'requested', 'pending'];
const CONCLUSIONS = ['action_required', 'cancelled', 'failure', 'neutral', 'success', 'skipped', 'stale', 'timed_out'];
const MAX_TEXT = 65535;

export function validateCheckRunBody(body: Record<string, unknown>, creating: boolean): ValidationError[] {
  const errors: ValidationError[] = [];
  const fail = (field: string, code: ValidationError['code'], message?: string) =>
    errors.push({ resource: 'CheckRun', field, code, ...(message ? { message } : {}) });

  if (creating) {
    if (typeof body.name !== 'string' || body.name === '') fail('name', 'missing_field');
    if (typeof body.head_sha !== 'string' || body.head_sha === '') fail('head_sha', 'missing_field');
  } else if ('name' in body && (typeof body.name !== 'string' || body.name === '')) {
    fail('name', 'invalid');
  }
  if (body.status !== undefined && !STATUSES.includes(String(body.status))) fail('status', 'invalid');
  if (body.conclusion !== undefined && !CONCLUSIONS.includes(String(body.conclusion))) fail('conclusion', 'invalid');
  if ((body.status === 'completed' || body.completed_at !== undefined) && body.conclusion === undefined) {
    fail('conclusion', 'missing_field', 'Conclusion must be specified when status is completed');
  }
  for (const field of ['started_at', 'completed_at']) {
    const value = body[field];
    if (value !== undefined && (typeof value !== 'string' || Number.isNaN(Date.parse(value)))) fail(field, 'invalid');
  }
  if (body.output !== undefined) {
    const output = body.output as Record<string, unknown> | null;
    if (!output || typeof output !== 'object') {
      fail('output', 'invalid');
    } else {
      if (typeof output.title !== 'string') fail('output.title', 'missing_field');
      if (typeof output.summary !== 'string') fail('output.summary', 'missing_field');
      if (typeof output.summary === 'string' && output.summary.length > MAX_TEXT) {
        fail('output.summary', 'custom', `Only ${MAX_TEXT} characters are allowed; ${output.summary.length} were supplied.`);
      }
      if (typeof output.text === 'string' && output.text.length > MAX_TEXT) {
        fail('output.text', 'custom', `Only ${MAX_TEXT} characters are allowed; ${output.text.length} were supplied.`);
      }
      if (Array.isArray(output.annotations) && output.annotations.length > 50) {
        fail('output.annotations', 'custom', 'Only 50 annotations are allowed per request');
      }
    }
  }
  if (body.actions !== undefined) {
    if (!Array.isArray(body.actions)) {
      fail('actions', 'invalid');
    } else {
      if (body.actions.length > 3) fail('actions', 'custom', 'Only 3 actions are allowed');
      body.actions.forEach((action: Record<string, unknown>, i: number) => {
        const limits: Array<[string, number]> = [['label', 20], ['description', 40], ['identifier', 20]];
        for (const [key, max] of limits) {
          const value = action?.[key];
          if (typeof value !== 'string' || value === '') fail(`actions[${i}].${key}`, 'missing_field');
          else if (value.length > max) fail(`actions[${i}].${key}`, 'custom', `${key} is too long (maximum is ${max} characters)`);
        }
      });
    }
  }
  return errors;
}
