/**
 * Fetches a repository at an exact SHA from GitHub's tarball endpoint. The API answers with a
 * redirect to a short-lived download URL; we follow it ourselves so the download streams and the
 * installation token is only ever sent to the API, never to the download host, the build or the
 * container.
 * https://docs.github.com/en/rest/repos/contents#download-a-repository-archive-tar
 */
import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { PermanentError, RetryableError } from '../../ports/errors.js';
import type { RepoRef } from '../../core/runs/run.js';
import type { SourceFetcher } from '../../ports/source-fetcher.js';
import { httpStatus, type OctokitForInstallation } from '../github/octokit.js';
import { extractTarball, type ExtractLimits, type ExtractReport } from './safe-extract.js';

export class GithubSourceFetcher implements SourceFetcher {
  constructor(
    private readonly deps: {
      octokitFor: OctokitForInstallation;
      limits?: ExtractLimits;
      fetch?: typeof fetch;
      onSkipped?: (report: ExtractReport) => void;
    },
  ) {}

  async fetch(repo: RepoRef, sha: string, destDir: string, signal: AbortSignal): Promise<void> {
    // Octokit retries a failed request for about 15 s, an aborted one included: do not start one.
    signal.throwIfAborted();
    if (!/^[0-9a-f]{40}$/.test(sha)) throw new PermanentError(`refusing to fetch "${sha}": only a full commit SHA is ever run`);
    const octokit = await this.deps.octokitFor(repo.installationId);
    let location: string | undefined;
    try {
      const response = await octokit.request('GET /repos/{owner}/{repo}/tarball/{ref}', {
        owner: repo.owner,
        repo: repo.name,
        ref: sha,
        request: { redirect: 'manual', signal },
      });
      location = response.headers.location;
    } catch (error) {
      const status = httpStatus(error);
      if (status === 404) throw new PermanentError(`commit ${sha} of ${repo.owner}/${repo.name} is not available`);
      throw new RetryableError(`GitHub did not give the source of ${sha} (${status ?? 'no response'})`, { cause: error });
    }
    if (!location) throw new RetryableError('GitHub answered the tarball request without a download URL');
    const download = await (this.deps.fetch ?? fetch)(location, { signal, redirect: 'follow' });
    if (!download.ok || !download.body) {
      throw new RetryableError(`downloading the source of ${sha} failed with HTTP ${download.status}`);
    }
    const report = await extractTarball(Readable.fromWeb(download.body as WebReadableStream<Uint8Array>), destDir, {
      ...(this.deps.limits ? { limits: this.deps.limits } : {}),
      stripComponents: 1,
      signal,
    });
    if (report.skipped.length > 0) this.deps.onSkipped?.(report);
  }
}
