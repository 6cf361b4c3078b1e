/**
 * The HTML page the gateway answers for a UnixFS folder without an `index.html`. Names come from
 * task outputs, so from strangers: every one is HTML-escaped and percent-encoded in its link, and
 * the page is served under the gateway's sandboxing CSP like any output. Sizes are the DAG sizes
 * the folder's links record (the Path Gateway spec's advice: no child block is read), and the page
 * lists at most `maxListedEntries` entries, however large the folder.
 */

/** Changes whenever the page's markup does, so caches drop pages made by an older version (it is part of the ETag). */
export const listingVersion = '1';

/** Most entries one listing shows. */
export const maxListedEntries = 10_000;

export interface ListedEntry {
  name: string;
  cid: string;
  /** DAG size of the entry, from its link (`Tsize`). */
  size: bigint;
}

export interface Listing {
  /** The content path, decoded: `/ipfs/<cid>/a/b/`. */
  path: string;
  cid: string;
  entries: ListedEntry[];
  /** The folder holds more entries than those listed. */
  truncated: boolean;
  /** The folder's own path is below a CID (it has a parent to link to). */
  hasParent: boolean;
}

export function renderListing(listing: Listing): string {
  const rows = listing.entries.map(
    (entry) =>
      `<tr><td><a href="./${escapeHtml(encodeURIComponent(entry.name))}">${escapeHtml(entry.name)}</a></td>` +
      `<td><a href="/ipfs/${escapeHtml(entry.cid)}?filename=${escapeHtml(encodeURIComponent(entry.name))}"><code>${escapeHtml(entry.cid)}</code></a></td>` +
      `<td>${formatSize(entry.size)}</td></tr>`,
  );
  const parent = listing.hasParent ? '<tr><td><a href="../">..</a></td><td></td><td></td></tr>' : '';
  const note = listing.truncated ? `<p>Only the first ${maxListedEntries.toLocaleString('en')} entries are listed; fetch the folder as a CAR for all of them.</p>` : '';
  return [
    '<!doctype html>',
    '<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${escapeHtml(listing.path)}</title>`,
    '<style>body{font-family:system-ui,sans-serif;margin:2rem}table{border-collapse:collapse}td,th{padding:.2rem .8rem;text-align:left}td:last-child{text-align:right}code{font-size:.85em}</style>',
    '</head><body>',
    `<h1>Index of ${escapeHtml(listing.path)}</h1>`,
    `<p>Folder <code>${escapeHtml(listing.cid)}</code> · <a href="/ipfs/${escapeHtml(listing.cid)}?format=car">download as CAR</a></p>`,
    '<table><thead><tr><th>Name</th><th>CID</th><th>DAG size</th></tr></thead><tbody>',
    parent,
    ...rows,
    '</tbody></table>',
    note,
    '</body></html>',
    '',
  ].join('\n');
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`);
}

function formatSize(size: bigint): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = Number(size);
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`;
}
