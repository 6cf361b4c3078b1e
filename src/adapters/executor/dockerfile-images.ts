/**
 * The images a classic-builder build of a Dockerfile would pull: each `FROM` that is not an
 * earlier stage or `scratch`, and each `COPY --from=` that names neither a stage nor a stage's
 * index. Variables are expanded as the builder does (Dockerfile reference, "Understand how ARG
 * and FROM interact" and "Environment replacement"): a `FROM` sees only the ARGs declared before
 * the first `FROM`, overridden by build args; inside a stage, `ARG` and `ENV` apply from where
 * they are declared.
 */
import { DockerfileParser, type Instruction } from 'dockerfile-ast';

export interface PulledImage {
  instruction: 'FROM' | 'COPY --from';
  /** 1-based line of the instruction. */
  line: number;
  /** The reference as written, before expansion. */
  written: string;
  /** The reference after ARG/ENV expansion, as the builder would pull it. */
  reference: string;
}

interface Declaration {
  name: string;
  value: string | null;
}

/** Lists the images a build would pull; throws when a reference cannot be expanded. */
export function imagesToPull(text: string, buildArgs: Readonly<Record<string, string>> = {}): PulledImage[] {
  const dockerfile = DockerfileParser.parse(text);
  const escape = dockerfile.getEscapeCharacter();
  const expand = (word: string, vars: ReadonlyMap<string, string>) => expandWord(word, vars, escape);

  const globals = new Map<string, string>();
  const stages: string[] = [];
  let stage: Map<string, string> | undefined;
  const images: PulledImage[] = [];

  for (const instruction of dockerfile.getInstructions()) {
    const keyword = instruction.getKeyword().toUpperCase();
    const line = instruction.getRange().start.line + 1;
    if (keyword === 'ARG') {
      for (const { name, value } of declarations(instruction)) {
        const given = Object.hasOwn(buildArgs, name) ? buildArgs[name] : undefined;
        if (!stage) {
          const resolved = given ?? (value === null ? undefined : expand(value, globals));
          if (resolved !== undefined) globals.set(name, resolved);
          continue;
        }
        // In a stage, a bare ARG brings the global value in.
        const resolved = given ?? (value === null ? globals.get(name) : expand(value, stage));
        if (resolved !== undefined) stage.set(name, resolved);
      }
    } else if (keyword === 'ENV' && stage) {
      for (const { name, value } of declarations(instruction)) stage.set(name, expand(value ?? '', stage));
    } else if (keyword === 'FROM') {
      const [image, as, name] = instruction.getArguments().map((argument) => argument.getValue());
      if (image !== undefined) {
        const reference = expand(image, globals);
        if (reference.toLowerCase() !== 'scratch' && !stages.includes(reference.toLowerCase())) {
          images.push({ instruction: 'FROM', line, written: image, reference });
        }
      }
      stages.push(as?.toUpperCase() === 'AS' && name ? name.toLowerCase() : `#${stages.length}`);
      stage = new Map();
    } else if (keyword === 'COPY' && stage) {
      for (const flag of fromFlags(instruction)) {
        const reference = expand(flag, stage);
        const index = /^\d+$/.test(reference) ? Number(reference) : -1;
        if (index >= 0 && index < stages.length - 1) continue;
        if (stages.slice(0, -1).includes(reference.toLowerCase())) continue;
        images.push({ instruction: 'COPY --from', line, written: flag, reference });
      }
    }
  }
  return images;
}

/**
 * The image the built image stands on: the last stage's `FROM`, followed back through earlier
 * stages it names, with ARGs expanded as for imagesToPull. Null when it is `scratch` (or there is
 * no FROM): then nothing stands below the image. Throws when a reference cannot be expanded.
 */
export function finalBaseImage(text: string, buildArgs: Readonly<Record<string, string>> = {}): string | null {
  const dockerfile = DockerfileParser.parse(text);
  const escape = dockerfile.getEscapeCharacter();
  const globals = new Map<string, string>();
  /** Each named stage's own base, by lower-cased name. */
  const stages = new Map<string, string | null>();
  let base: string | null = null;
  let inStage = false;
  for (const instruction of dockerfile.getInstructions()) {
    const keyword = instruction.getKeyword().toUpperCase();
    if (keyword === 'ARG' && !inStage) {
      for (const { name, value } of declarations(instruction)) {
        const given = Object.hasOwn(buildArgs, name) ? buildArgs[name] : undefined;
        const resolved = given ?? (value === null ? undefined : expandWord(value, globals, escape));
        if (resolved !== undefined) globals.set(name, resolved);
      }
    } else if (keyword === 'FROM') {
      inStage = true;
      const [image, as, name] = instruction.getArguments().map((argument) => argument.getValue());
      if (image === undefined) continue;
      const reference = expandWord(image, globals, escape);
      const lower = reference.toLowerCase();
      base = lower === 'scratch' ? null : stages.has(lower) ? stages.get(lower)! : reference;
      if (as?.toUpperCase() === 'AS' && name) stages.set(name.toLowerCase(), base);
    }
  }
  return base;
}

function declarations(instruction: Instruction): Declaration[] {
  const withProperties = instruction as Instruction & { getProperties?: () => Array<{ getName(): string; getValue(): string | null }> };
  return (withProperties.getProperties?.() ?? []).map((property) => ({ name: property.getName(), value: property.getValue() }));
}

/** Every `--from` value of a COPY (the builder takes flags before the arguments, in any case). */
function fromFlags(instruction: Instruction): string[] {
  const withFlags = instruction as Instruction & { getFlags?: () => Array<{ getName(): string; getValue(): string | null }> };
  return (withFlags.getFlags?.() ?? [])
    .filter((flag) => flag.getName().toLowerCase() === 'from')
    .map((flag) => flag.getValue() ?? '');
}

/**
 * Expands `$NAME`, `${NAME}`, `${NAME:-word}` and `${NAME:+word}`, removes quotes and escapes,
 * as the builder's shell-word processing does; an unset variable is empty. Anything else the
 * builder would refuse too, so it is refused here.
 */
export function expandWord(word: string, vars: ReadonlyMap<string, string>, escape = '\\'): string {
  let out = '';
  let i = 0;
  let quote: '"' | "'" | undefined;
  while (i < word.length) {
    const c = word[i]!;
    if (quote === "'") {
      if (c === "'") quote = undefined;
      else out += c;
      i++;
    } else if (c === escape && i + 1 < word.length) {
      out += word[i + 1];
      i += 2;
    } else if ((c === '"' || c === "'") && quote === undefined) {
      quote = c;
      i++;
    } else if (c === '"' && quote === '"') {
      quote = undefined;
      i++;
    } else if (c === '$') {
      const [value, next] = expandVariable(word, i, vars, escape);
      out += value;
      i = next;
    } else {
      out += c;
      i++;
    }
  }
  if (quote) throw new Error(`unmatched quote in ${JSON.stringify(word)}`);
  return out;
}

function expandVariable(word: string, start: number, vars: ReadonlyMap<string, string>, escape: string): [string, number] {
  const simple = /^\$([A-Za-z_][A-Za-z0-9_]*)/.exec(word.slice(start));
  if (simple) return [vars.get(simple[1]!) ?? '', start + simple[0].length];
  if (word[start + 1] !== '{') return ['$', start + 1];
  // Find the closing brace, allowing nested ${…} in the word after :- or :+.
  let depth = 0;
  let end = start + 1;
  for (; end < word.length; end++) {
    if (word[end] === escape) end++;
    else if (word[end] === '{') depth++;
    else if (word[end] === '}' && --depth === 0) break;
  }
  if (end >= word.length) throw new Error(`missing "}" in ${JSON.stringify(word)}`);
  const inner = word.slice(start + 2, end);
  const match = /^([A-Za-z_][A-Za-z0-9_]*)(?:(:[-+])([\s\S]*))?$/.exec(inner);
  if (!match) throw new Error(`unsupported substitution "\${${inner}}" in ${JSON.stringify(word)}`);
  const [, name, modifier, alternative] = match;
  const value = vars.get(name!) ?? '';
  if (modifier === ':-') return [value !== '' ? value : expandWord(alternative!, vars, escape), end + 1];
  if (modifier === ':+') return [value !== '' ? expandWord(alternative!, vars, escape) : '', end + 1];
  return [value, end + 1];
}
