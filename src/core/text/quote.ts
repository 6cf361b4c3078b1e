/**
 * The one way text someone wrote (a comment's words, a manifest's names, descriptions and values,
 * a YAML error that quotes them) goes into what the app says: as a Markdown code span. GitHub
 * makes no @mention, no issue or commit reference, no link and no formatting inside inline code
 * (https://github.github.com/gfm/#code-spans), so a stranger cannot make the app ping a team,
 * link a site or shout in bold. The same text reads plainly in the JSON API and the CLI.
 *
 * - The fence is one backtick longer than the longest run of backticks inside, so nothing in the
 *   text can close it; a space pads text that starts or ends with a backtick or a space, and
 *   CommonMark strips exactly that one space again.
 * - Line breaks and other control characters become spaces: a blank line would end the paragraph
 *   and with it the span. Bidirectional overrides become U+FFFD, so the text cannot turn the
 *   words after it around.
 * - Empty text is a span of spaces.
 * - Text longer than `maxChars` code points is cut, with `…`: a reply never repeats a novel.
 */
const lineBreaksAndControls = /[\p{Cc}\u2028\u2029]/gu;
const bidiControls = /[\u200E\u200F\u202A-\u202E\u2066-\u2069]/gu;

export function quote(text: string, maxChars = 200): string {
  const chars = Array.from(text.replace(lineBreaksAndControls, ' ').replace(bidiControls, '\uFFFD'));
  const shown = chars.length > maxChars ? `${chars.slice(0, maxChars).join('')}…` : chars.join('');
  const longestRun = Math.max(0, ...(shown.match(/`+/g) ?? []).map((run) => run.length));
  const fence = '`'.repeat(longestRun + 1);
  // An empty span would be a bare fence that pairs with the next one: show one space instead.
  const pad = shown === '' || /^[` ]|[` ]$/.test(shown) ? ' ' : '';
  return `${fence}${pad}${shown}${pad}${fence}`;
}
