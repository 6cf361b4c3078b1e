/**
 * Parameter patterns (`params.<name>.pattern` in `task-mgmt.yml`) come from pull requests, so a
 * pattern must not be able to stall the process. JavaScript's `RegExp` backtracks: `(a+)+$`
 * against thirty `a`s and a `!` blocks the event loop for over a minute. Patterns are therefore
 * compiled with RE2 semantics by re2js, a pure JavaScript port of RE2 (no native build), whose
 * matching time grows linearly with the value: backreferences and lookaround do not exist there
 * and are refused as manifest errors (https://github.com/google/re2/wiki/Syntax).
 *
 * Linear is not free: time is program size × value length, and compiling costs about as much as
 * the program's size. So a pattern's program is bounded before it is compiled (an upper bound
 * computed from its text, the way RE2's parser sizes repetitions), and so is the length of a
 * value checked against one.
 */
import { RE2JS } from 're2js';

/** The most program steps one pattern may compile to; `[a-z]{2}` is 2, `[0-9a-f]{40}` is 40. */
export const maxPatternSize = 1000;
/** The most parameters with a pattern in one manifest: compiling one costs about a millisecond. */
export const maxManifestPatterns = 100;
/** The most program steps all the patterns of one manifest may compile to together. */
export const maxManifestPatternSize = 2000;
/** The longest value checked against a pattern: 1,000 steps × 1,024 characters is about 20 ms. */
export const maxPatternValueLength = 1024;

export type CompiledPattern = { ok: true; matches: (value: string) => boolean } | { ok: false; reason: string };

const cache = new Map<string, CompiledPattern>();

/**
 * Compiles a parameter pattern, anchored at both ends as it always was (`^(?:pattern)$`: the
 * whole value must match), or says in one line why it is refused.
 */
export function compilePattern(pattern: string): CompiledPattern {
  const cached = cache.get(pattern);
  if (cached) return cached;
  const compiled = compile(pattern);
  if (cache.size >= 256) cache.clear();
  cache.set(pattern, compiled);
  return compiled;
}

function compile(pattern: string): CompiledPattern {
  const size = patternSize(pattern);
  if (size > maxPatternSize) {
    return { ok: false, reason: `is too large: it would compile to about ${size} steps, and a pattern may have at most ${maxPatternSize} (lower its repetition counts)` };
  }
  try {
    // Compiled alone first so that `a)|(b` is refused rather than closed by the anchors' group.
    RE2JS.compile(pattern);
    const anchored = RE2JS.compile(`^(?:${pattern})$`);
    return { ok: true, matches: (value) => anchored.test(value) };
  } catch (error) {
    const why = (error instanceof Error ? error.message : String(error)).replace(/^error parsing regexp: /, '');
    return { ok: false, reason: `is not a regular expression task-mgmt accepts (RE2 syntax: no backreferences or lookaround): ${why}` };
  }
}

/**
 * An upper bound of the number of program steps RE2 compiles `pattern` to, from its text alone:
 * a literal or a character class is one step, a Unicode class (`\p{…}`) ten (it carries its
 * ranges), a group its contents plus two, `x*` two more than `x`, `x+` and `x?` one more,
 * `x{n,m}` m copies of `x` plus m−n, alternatives add up. Mirrors the size check of RE2's parser.
 */
export function patternSize(pattern: string): number {
  let at = 0;
  const peek = () => pattern[at];

  const alternation = (): number => {
    let total = sequence();
    let branches = 1;
    while (peek() === '|') {
      at += 1;
      total += sequence();
      branches += 1;
    }
    return total + branches - 1;
  };

  const sequence = (): number => {
    let total = 0;
    while (at < pattern.length && peek() !== '|' && peek() !== ')') {
      let size = atom();
      for (;;) {
        const next = peek();
        if (next === '*') {
          size += 2;
          at += 1;
        } else if (next === '+' || next === '?') {
          size += 1;
          at += 1;
        } else if (next === '{') {
          const repeat = /^\{(\d{1,7})(,(\d{0,7}))?\}/.exec(pattern.slice(at, at + 20));
          if (!repeat) break;
          const min = Number(repeat[1]);
          const max = repeat[2] === undefined ? min : repeat[3] === '' ? -1 : Number(repeat[3]);
          size = max === -1 ? 1 + Math.max(min, 1) * size : Math.max(max, 1) * size + Math.max(max - min, 0);
          at += repeat[0].length;
        } else break;
        if (peek() === '?') at += 1; // non-greedy: same size
      }
      total += size;
    }
    return total;
  };

  const atom = (): number => {
    const char = pattern[at]!;
    if (char === '(') {
      at += 1;
      const inner = alternation();
      if (peek() === ')') at += 1;
      return inner + 2;
    }
    if (char === '[') return characterClass();
    if (char === '\\') return escape();
    at += 1;
    return 1;
  };

  const escape = (): number => {
    const kind = pattern[at + 1];
    at += 2;
    if (kind === 'Q') {
      const end = pattern.indexOf('\\E', at);
      const literal = end === -1 ? pattern.length - at : end - at;
      at = end === -1 ? pattern.length : end + 2;
      return Math.max(literal, 1);
    }
    if ((kind === 'p' || kind === 'P' || kind === 'x') && peek() === '{') {
      const end = pattern.indexOf('}', at);
      at = end === -1 ? pattern.length : end + 1;
    } else if (kind === 'p' || kind === 'P') {
      at += 1;
    }
    return kind === 'p' || kind === 'P' ? 10 : 1;
  };

  const characterClass = (): number => {
    at += 1;
    if (peek() === '^') at += 1;
    if (peek() === ']') at += 1; // a `]` first is literal
    let unicode = false;
    while (at < pattern.length && peek() !== ']') {
      if (peek() === '\\') {
        const kind = pattern[at + 1];
        if (kind === 'p' || kind === 'P') unicode = true;
        at += 2;
        if (peek() === '{') {
          const end = pattern.indexOf('}', at);
          at = end === -1 ? pattern.length : end + 1;
        }
      } else if (pattern.startsWith('[:', at)) {
        const end = pattern.indexOf(':]', at + 2);
        at = end === -1 ? at + 1 : end + 2;
      } else at += 1;
    }
    at += 1;
    return unicode ? 10 : 1;
  };

  let total = 0;
  while (at < pattern.length) {
    total += alternation();
    if (peek() === ')') at += 1; // unbalanced: RE2 refuses it when compiling
  }
  return total;
}
