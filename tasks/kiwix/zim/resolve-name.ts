/**
 * From a Kiwix book name to the URL of its ZIM file. Kiwix publishes
 * `<mirror><project>/<name>_<YYYY-MM>.zim`, with the project folder named after the name's first
 * segment (`wikipedia_en_all_nopic` → `wikipedia/`), and lists each folder as an Apache-style
 * HTML index; the newest dated file is the book's latest release.
 */

/** `wikipedia_en_all_nopic_2024-01` → name and date; an undated name has no date. */
export function splitDatedName(name: string): { book: string; date: string | undefined } {
  const match = /^(.+)_(\d{4}-\d{2})$/.exec(name);
  return match ? { book: match[1]!, date: match[2]! } : { book: name, date: undefined };
}

/** The project folder a book lives in: the name's first segment. */
export function projectOf(book: string): string {
  return book.split('_')[0]!;
}

export function folderUrl(mirror: string, project: string): string {
  const base = mirror.endsWith('/') ? mirror : `${mirror}/`;
  return new URL(`${encodeURIComponent(project)}/`, base).href;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * The file name of the newest `<book>_YYYY-MM.zim` linked from a directory listing, or undefined.
 * Only exact matches count: `wikipedia_en_all` never picks `wikipedia_en_all_nopic_…`.
 */
export function newestInListing(html: string, book: string): string | undefined {
  const wanted = new RegExp(`^${escapeRegExp(book)}_(\\d{4}-\\d{2})\\.zim$`);
  let newest: { date: string; file: string } | undefined;
  for (const match of html.matchAll(/href\s*=\s*["']([^"']+)["']/gi)) {
    let href = match[1]!;
    try {
      href = decodeURIComponent(href);
    } catch {
      continue;
    }
    const file = href.split(/[?#]/)[0]!.split('/').pop() ?? '';
    const dated = wanted.exec(file);
    // YYYY-MM compares correctly as text.
    if (dated && (!newest || dated[1]! > newest.date)) newest = { date: dated[1]!, file };
  }
  return newest?.file;
}
