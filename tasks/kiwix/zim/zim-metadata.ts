/**
 * The metadata of a ZIM file (namespace `M`: Title, Language, Creator, …) and its article count.
 *
 * Blobs in uncompressed clusters are read directly. libzim 7+ puts text metadata in a zstd
 * cluster, and Node 20 has no zstd (zlib.zstdDecompress arrived in Node 22.15), so those are
 * read with `zimdump show` from zim-tools when it is installed. Without it, the metadata holds
 * what the header and the uncompressed clusters give, and `source` says so.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Compression, type DirEntry, type ZimReader } from './zim-reader.js';

const run = promisify(execFile);

/** Metadata names written by Kiwix's tools, and the keys they get in zim.json. */
const known: Record<string, string> = {
  Title: 'title',
  Language: 'language',
  Creator: 'creator',
  Publisher: 'publisher',
  Date: 'date',
  Description: 'description',
  LongDescription: 'longDescription',
  Name: 'name',
  Flavour: 'flavour',
  Tags: 'tags',
  Source: 'source',
  Scraper: 'scraper',
  License: 'license',
  Relation: 'relation',
  Counter: 'counter',
};

const MAX_METADATA_BYTES = 64 * 1024;
const MAX_METADATA_ENTRIES = 256;

export interface ZimMetadata {
  [key: string]: string | number | null | undefined;
  title?: string;
  language?: string;
  creator?: string;
  publisher?: string;
  date?: string;
  description?: string;
  /** Front articles (what Kiwix shows as the article count), when the file says. */
  articleCount: number | null;
  /** Every directory entry, from the header. */
  entryCount: number;
  mainPage: string | null;
  /** How the metadata was read: `zim` (directly), `zimdump`, or `header` (metadata unreadable). */
  readWith: 'zim' | 'zimdump' | 'header';
}

export interface ReadMetadataOptions {
  path: string;
  signal: AbortSignal;
  log: (line: string) => void;
  /** zimdump command; undefined looks it up on PATH. */
  zimdump?: string;
}

export async function readZimMetadata(reader: ZimReader, options: ReadMetadataOptions): Promise<ZimMetadata> {
  const blobs = new BlobSource(reader, options);
  const metadata: ZimMetadata = {
    entryCount: reader.header.entryCount,
    articleCount: null,
    mainPage: null,
    readWith: 'zim',
  };

  const { start, end } = await reader.namespaceRange('M');
  for (let index = start; index < Math.min(end, start + MAX_METADATA_ENTRIES); index++) {
    const entry = await reader.entry(index);
    const key = known[entry.url];
    if (!key || !entry.mime?.startsWith('text/')) continue;
    const value = await blobs.read(entry);
    if (value !== undefined) metadata[key] = value.toString('utf8');
  }

  metadata.articleCount = await articleCount(reader, blobs);
  if (reader.header.mainPage !== null) {
    let main = await reader.entry(reader.header.mainPage);
    // ZIM 6.1 points at W/mainPage, a redirect to the real page.
    if (main.redirectIndex !== undefined) main = await reader.entry(main.redirectIndex);
    metadata.mainPage = main.url;
  }
  metadata.readWith = blobs.unread > 0 ? 'header' : blobs.usedZimdump ? 'zimdump' : 'zim';
  if (blobs.unread > 0) {
    options.log(`kiwix/zim: ${blobs.unread} metadata entries sit in compressed clusters and zimdump is not available; recorded the header only`);
  }
  return metadata;
}

/**
 * Front articles: ZIM 6.1 lists them in `X/listing/titleOrdered/v1` (one 4-byte index each);
 * older files keep articles in namespace `A`.
 */
async function articleCount(reader: ZimReader, blobs: BlobSource): Promise<number | null> {
  const listing = await reader.find('X', 'listing/titleOrdered/v1');
  if (listing) {
    const size = await blobs.size(listing);
    return size === undefined ? null : size / 4;
  }
  const { start, end } = await reader.namespaceRange('A');
  return end - start;
}

/** Reads blobs directly, or through zimdump when their cluster is compressed. */
class BlobSource {
  usedZimdump = false;
  unread = 0;
  private zimdumpMissing = false;

  constructor(
    private readonly reader: ZimReader,
    private readonly options: ReadMetadataOptions,
  ) {}

  private async compressed(entry: DirEntry): Promise<boolean> {
    const compression = await this.reader.clusterCompression(entry.cluster!);
    return compression !== Compression.none && compression !== 0;
  }

  async read(entry: DirEntry): Promise<Buffer | undefined> {
    if (entry.cluster === undefined || entry.blob === undefined) return undefined;
    if (!(await this.compressed(entry))) return this.reader.readBlob(entry.cluster, entry.blob, MAX_METADATA_BYTES);
    const details = await this.zimdumpDetails(entry);
    if (!details || details.size > MAX_METADATA_BYTES) return undefined;
    const { stdout } = await run(this.command, ['show', `--idx=${entry.index}`, '--', this.options.path], {
      encoding: 'buffer',
      maxBuffer: MAX_METADATA_BYTES * 2,
      timeout: 60_000,
      signal: this.options.signal,
    });
    this.usedZimdump = true;
    return stdout;
  }

  async size(entry: DirEntry): Promise<number | undefined> {
    if (entry.cluster === undefined || entry.blob === undefined) return undefined;
    if (!(await this.compressed(entry))) return this.reader.blobSize(entry.cluster, entry.blob);
    return (await this.zimdumpDetails(entry))?.size;
  }

  private get command(): string {
    return this.options.zimdump ?? 'zimdump';
  }

  /**
   * `zimdump list --details --idx=N` names the entry at URL-list index N; checking that its path
   * is the entry we read makes sure both sides count entries the same way.
   */
  private async zimdumpDetails(entry: DirEntry): Promise<{ size: number } | undefined> {
    if (this.zimdumpMissing) {
      this.unread++;
      return undefined;
    }
    let stdout: string;
    try {
      ({ stdout } = await run(this.command, ['list', '--details', `--idx=${entry.index}`, '--', this.options.path], {
        maxBuffer: 1024 * 1024,
        timeout: 60_000,
        signal: this.options.signal,
      }));
    } catch (error) {
      if (this.options.signal.aborted) throw error;
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') this.zimdumpMissing = true;
      else this.options.log(`kiwix/zim: zimdump could not read entry ${entry.index}: ${(error as Error).message}`);
      this.unread++;
      return undefined;
    }
    const path = /^path: (.*)$/m.exec(stdout)?.[1];
    const size = /^\* item size:\s+(\d+)/m.exec(stdout)?.[1];
    const expected = [entry.url, `${entry.namespace}/${entry.url}`];
    if (path === undefined || !expected.includes(path) || size === undefined) {
      this.options.log(`kiwix/zim: zimdump names entry ${entry.index} "${path ?? '?'}", expected "${entry.url}"; skipped`);
      this.unread++;
      return undefined;
    }
    return { size: Number(size) };
  }
}
