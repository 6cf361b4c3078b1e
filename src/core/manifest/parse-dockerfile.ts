/**
 * A Dockerfile's instructions as the builder reads them, through one real parser (dockerfile-ast)
 * for everything in the app that reads Dockerfiles: parser directives (`# escape=` makes the
 * backtick the continuation character), continued lines with comments inside, heredocs, flags and
 * the JSON form. https://docs.docker.com/reference/dockerfile/#parser-directives
 */
import { Copy, DockerfileParser, ModifiableInstruction, Onbuild, Run, type Instruction } from 'dockerfile-ast';

export interface DockerfileFlag {
  /** Lower-case, without the dashes: `from`, `chown`, `mount`. */
  name: string;
  /** What follows `=`; null for a bare flag such as `--link`. */
  value: string | null;
  /** `key=value` pairs of a flag like `--mount=type=bind,source=x`, keys lower-case. */
  options: Map<string, string>;
}

export interface DockerfileInstruction {
  /** Upper-case: `FROM`, `COPY`, `ADD`, `RUN`… */
  keyword: string;
  /** 1-based line where the instruction starts. */
  line: number;
  flags: DockerfileFlag[];
  /**
   * The arguments after the flags: the JSON array's strings when the arguments are one (Docker's
   * rule: the whole text parses as a JSON array of strings), else the words of the shell form.
   * Heredoc bodies are left out; their `<<NAME` openers stay, see `heredocs`.
   */
  args: string[];
  /** Whether `args` came from the JSON form. */
  json: boolean;
  /** Names of the heredocs the instruction opens (`COPY <<EOF /etc/motd` → `EOF`). */
  heredocs: string[];
  /** For `ONBUILD`, the instruction it holds for builds based on this image. */
  trigger?: DockerfileInstruction;
}

export interface ParsedDockerfile {
  /** `\` unless an `# escape=` directive set the backtick. */
  escape: string;
  /** Parser directives (`# syntax=…`, `# escape=…`) by lower-case name; only the file's first lines can hold them. */
  directives: Map<string, string>;
  instructions: DockerfileInstruction[];
}

export function parseDockerfile(text: string): ParsedDockerfile {
  const dockerfile = DockerfileParser.parse(text);
  return {
    escape: dockerfile.getEscapeCharacter(),
    directives: new Map(dockerfile.getDirectives().map((directive) => [directive.getName().toLowerCase(), directive.getValue()])),
    instructions: dockerfile.getInstructions().map(instruction),
  };
}

function instruction(parsed: Instruction): DockerfileInstruction {
  const flagNodes = parsed instanceof ModifiableInstruction ? parsed.getFlags() : [];
  const flags = flagNodes.map((flag) => ({
    name: flag.getName().toLowerCase(),
    value: flag.getValue(),
    options: new Map(flag.getOptions().map((option) => [option.getName().toLowerCase(), option.getValue() ?? ''])),
  }));
  // The parser tokenizes again on each call, so each is made once and only when it can matter.
  const argumentNodes = parsed.getArguments();
  const opensHeredoc = argumentNodes.some((argument) => argument.getValue().startsWith('<<'));
  const heredocNodes = opensHeredoc && (parsed instanceof Copy || parsed instanceof Run) ? parsed.getHeredocs() : [];
  // Heredoc bodies start on the line after the instruction; the parser lists their lines as
  // arguments too, so only the arguments before the first body are the instruction's own.
  const bodyStarts = heredocNodes.map((heredoc) => (heredoc.getContentRange() ?? heredoc.getDelimiterRange())?.start.line).filter((line) => line !== undefined);
  const firstBody = bodyStarts.length > 0 ? Math.min(...bodyStarts) : Infinity;
  const words = (firstBody === Infinity ? argumentNodes : argumentNodes.filter((argument) => argument.getRange().start.line < firstBody)).map((argument) => argument.getValue());
  const asJson = heredocNodes.length === 0 && words[0]?.startsWith('[') ? jsonArray(parsed.getArgumentsContent()) : null;
  const trigger = parsed instanceof Onbuild ? parsed.getTriggerInstruction() : null;
  return {
    keyword: parsed.getKeyword().toUpperCase(),
    line: parsed.getRange().start.line + 1,
    flags,
    args: asJson ?? words,
    json: asJson !== null,
    heredocs: heredocNodes.map((heredoc) => heredoc.getName()),
    ...(trigger ? { trigger: instruction(trigger) } : {}),
  };
}

/** The JSON form, as the builder decides it: the whole argument text is a JSON array of strings. */
function jsonArray(content: string | null): string[] | null {
  const text = content?.trim() ?? '';
  if (!text.startsWith('[')) return null;
  try {
    const parsed: unknown = JSON.parse(text);
    return Array.isArray(parsed) && parsed.every((item) => typeof item === 'string') ? parsed : null;
  } catch {
    return null;
  }
}
