/**
 * The metadata of a ZIM file (namespace `M`: Title, Language, Creator, …), its article count
 * and main page, as zim.json records them. libzim 7+ puts text metadata in a zstd cluster (older
 * files in xz ones); ZimReader decompresses them within the inspection's limits. Runs in the
 * inspection's worker thread (zim-worker.ts).
 */
import type { ZimReader } from './zim-reader.js';

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
}

export async function readZimMetadata(reader: ZimReader, log: (line: string) => void): Promise<ZimMetadata> {
  const metadata: ZimMetadata = { entryCount: reader.header.entryCount, articleCount: null, mainPage: null };

  const { start, end } = await reader.namespaceRange('M');
  if (end - start > MAX_METADATA_ENTRIES) log(`kiwix/zim: the file has ${end - start} metadata entries; read the first ${MAX_METADATA_ENTRIES}`);
  for (let index = start; index < Math.min(end, start + MAX_METADATA_ENTRIES); index++) {
    const entry = await reader.entry(index);
    const key = known[entry.url];
    if (!key || !entry.mime?.startsWith('text/')) continue;
    const value = await reader.readBlob(entry, MAX_METADATA_BYTES);
    if (value === undefined) log(`kiwix/zim: metadata ${entry.url} is larger than ${MAX_METADATA_BYTES / 1024} KiB; left out`);
    else metadata[key] = value.toString('utf8');
  }

  metadata.articleCount = await articleCount(reader);
  if (reader.header.mainPage !== null) {
    // ZIM 6.1 points at W/mainPage, a redirect to the real page.
    metadata.mainPage = (await reader.resolve(reader.header.mainPage)).url;
  }
  return metadata;
}

/**
 * Front articles: ZIM 6.1 lists them in `X/listing/titleOrdered/v1` (one 4-byte index each);
 * older files keep articles in namespace `A`.
 */
async function articleCount(reader: ZimReader): Promise<number | null> {
  const listing = await reader.find('X', 'listing/titleOrdered/v1');
  if (listing) {
    if (listing.redirectIndex !== undefined || listing.cluster === undefined) return null;
    return Math.floor((await reader.blobSize(listing)) / 4);
  }
  const { start, end } = await reader.namespaceRange('A');
  return end - start;
}
