/**
 * HTML built by a tagged template that escapes every value put into it: task names, parameters,
 * log lines, output names and errors come from repositories and tasks, so none of them may become
 * markup. Only what another `html` template made is inserted as it is.
 */

export class Html {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

type Value = Html | string | number | boolean | null | undefined | readonly Value[];

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function render(value: Value): string {
  if (value === null || value === undefined || value === false) return '';
  if (value instanceof Html) return value.text;
  if (Array.isArray(value)) return value.map(render).join('');
  return escapeHtml(String(value));
}

export function html(strings: TemplateStringsArray, ...values: Value[]): Html {
  let text = strings[0] ?? '';
  for (let i = 0; i < values.length; i += 1) text += render(values[i]!) + (strings[i + 1] ?? '');
  return new Html(text);
}

/** A query string from the set values, escaped for a URL. */
export function query(params: Record<string, string | undefined>): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) if (value) search.set(key, value);
  const text = search.toString();
  return text ? `?${text}` : '';
}

/** A path segment, escaped for a URL. */
export function segment(text: string): string {
  return encodeURIComponent(text);
}
