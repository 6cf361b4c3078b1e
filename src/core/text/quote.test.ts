import MarkdownIt from 'markdown-it';
import { describe, expect, it } from 'vitest';
import { quote } from './quote.js';

const markdown = new MarkdownIt({ html: true, linkify: true });

describe('quote', () => {
  it.each([
    ['plain text', 'build', '`build`'],
    ['a team mention', '@octo-org/team', '`@octo-org/team`'],
    ['references and a link', 'octo-org/repo#1 #2 https://evil.example', '`octo-org/repo#1 #2 https://evil.example`'],
    ['Markdown and HTML', '[x](https://evil.example) **b** <b>h</b>', '`[x](https://evil.example) **b** <b>h</b>`'],
    ['a backtick inside', 'a`b', '``a`b``'],
    ['a run of backticks inside', 'a```b``c', '````a```b``c````'],
    ['a backtick at an end', '`@team`', '`` `@team` ``'],
    ['a space at an end', ' x', '`  x `'],
    ['line breaks', 'a\n\n# @team\r\nb', '`a  # @team  b`'],
    ['control characters', 'a\u0000b\u0007c', '`a b c`'],
    ['a bidirectional override', 'abc\u202Edef', '`abc\uFFFDdef`'],
    ['the empty string', '', '`  `'],
  ])('%s', (_name, text, quoted) => {
    expect(quote(text)).toBe(quoted);
    // Checked by a CommonMark parser too: the text is all inside code, even beside other quotes.
    const html = markdown.render(`@mona see ${quote(text)} and ${quote('a``b')} then ${quote(text)}.`);
    expect(html.replace(/<code>[\s\S]*?<\/code>/g, '')).toBe('<p>@mona see  and  then .</p>\n');
  });

  it('cuts long text at a code point, not inside one', () => {
    expect(quote('é'.repeat(5), 3)).toBe('`ééé…`');
    expect(quote('😀😀😀', 2)).toBe('`😀😀…`');
  });
});
