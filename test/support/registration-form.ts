/**
 * Reads the App registration page the way a browser does (parse5 implements the HTML standard's
 * parser): the form's action and the manifest it would post to GitHub.
 */
import { parse, type DefaultTreeAdapterMap } from 'parse5';

type Element = DefaultTreeAdapterMap['element'];
type Node = DefaultTreeAdapterMap['node'];

/** Every element of a parsed document, depth first. */
function elements(node: Node): Element[] {
  const found: Element[] = [];
  if ('tagName' in node) found.push(node);
  for (const child of 'childNodes' in node ? node.childNodes : []) found.push(...elements(child));
  return found;
}

const attr = (element: Element, name: string) => element.attrs.find((a) => a.name === name)?.value;

/** The form's action and its `manifest` field, parsed as JSON (which throws if the page broke it). */
export function registrationForm(html: string): { action: string; manifest: Record<string, unknown> } {
  const all = elements(parse(html));
  const form = all.find((e) => e.tagName === 'form');
  const field = form && elements(form).find((e) => attr(e, 'name') === 'manifest');
  if (!form || !field) throw new Error('the page has no registration form with a manifest field');
  return { action: attr(form, 'action')!, manifest: JSON.parse(attr(field, 'value')!) as Record<string, unknown> };
}
