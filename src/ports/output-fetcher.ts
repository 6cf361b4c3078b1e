/**
 * How a worker gets the outputs of a task it needs when another machine ran that task: by CID,
 * from where the deployment keeps them, every block checked against its CID before a byte of it
 * is written to disk (README "Pipelines across machines").
 */

export interface FetchLimits {
  /** Most bytes of file content (OUTPUT_MAX_BYTES). */
  maxBytes: number;
  /** Most files, folders and links below the root (OUTPUT_MAX_FILES). */
  maxFiles: number;
}

export interface FetchOptions {
  /**
   * Whether the outputs were published to the IPFS node the deployment adds to (Kubo): false for
   * a private repository's outputs kept off it, which only the app's own gateway serves.
   */
  published: boolean;
  limits: FetchLimits;
  /** Scratch space for this fetch, removed by the caller afterwards. */
  scratchDir: string;
  signal: AbortSignal;
}

export interface OutputFetcher {
  /**
   * Writes the UnixFS folder `cid` to `dir` (which must not exist yet), complete and verified, or
   * leaves no `dir` and throws: a DagFetchError (one line: what is wrong and where) when the DAG is
   * missing, incomplete, over the limits or does not match its CIDs; a RetryableError when its
   * source cannot be reached.
   */
  fetch(cid: string, dir: string, options: FetchOptions): Promise<void>;
}

/** The outputs could not be had as they were recorded; the message says why, in one line. */
export class DagFetchError extends Error {
  override readonly name = 'DagFetchError';
}
