/**
 * The `Content-Type` of a file the gateway serves as itself. UnixFS keeps no type, so, as the Path
 * Gateway spec suggests, it is guessed: from the name's extension first (as Kubo does), then from
 * the first bytes (`file-type`'s magic numbers), then text if the bytes read as UTF-8, else
 * `application/octet-stream`. Whatever the guess, the gateway sends `nosniff` and a sandboxing
 * CSP, so a guess of HTML cannot run script as the app.
 */
import { fileTypeFromBuffer } from 'file-type';

/** How many leading bytes the guess reads (file-type's own sample size). */
export const sniffBytes = 4100;

const utf8 = 'charset=utf-8';

const byExtension: Record<string, string> = {
  html: `text/html; ${utf8}`,
  htm: `text/html; ${utf8}`,
  css: `text/css; ${utf8}`,
  js: `text/javascript; ${utf8}`,
  mjs: `text/javascript; ${utf8}`,
  json: `application/json; ${utf8}`,
  txt: `text/plain; ${utf8}`,
  log: `text/plain; ${utf8}`,
  md: `text/markdown; ${utf8}`,
  csv: `text/csv; ${utf8}`,
  tsv: `text/tab-separated-values; ${utf8}`,
  xml: `application/xml; ${utf8}`,
  yaml: `application/yaml; ${utf8}`,
  yml: `application/yaml; ${utf8}`,
  svg: 'image/svg+xml',
  png: 'image/png',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  gif: 'image/gif',
  webp: 'image/webp',
  avif: 'image/avif',
  ico: 'image/vnd.microsoft.icon',
  pdf: 'application/pdf',
  wasm: 'application/wasm',
  zip: 'application/zip',
  gz: 'application/gzip',
  tar: 'application/x-tar',
  zst: 'application/zstd',
  warc: 'application/warc',
  wacz: 'application/wacz',
  zim: 'application/x-zim',
  mp3: 'audio/mpeg',
  ogg: 'audio/ogg',
  wav: 'audio/wav',
  mp4: 'video/mp4',
  webm: 'video/webm',
};

/** The type of a file named `name` (null: unnamed) whose content starts with `head`. */
export async function guessContentType(name: string | null, head: Uint8Array): Promise<string> {
  const extension = name?.toLowerCase().match(/\.([a-z0-9]{1,8})$/)?.[1];
  const named = extension === undefined ? undefined : byExtension[extension];
  if (named !== undefined) return named;
  const sniffed = head.byteLength > 0 ? await fileTypeFromBuffer(head) : undefined;
  if (sniffed) return sniffed.mime;
  return looksLikeText(head) ? `text/plain; ${utf8}` : 'application/octet-stream';
}

/** No NUL, and valid UTF-8 but for a character the sample may have cut in two at its end. */
function looksLikeText(head: Uint8Array): boolean {
  if (head.includes(0)) return false;
  const decoder = new TextDecoder('utf-8', { fatal: true });
  try {
    decoder.decode(head, { stream: true });
    return true;
  } catch {
    return false;
  }
}
