import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';

export interface OpenApiOperation {
  operationId: string;
  requestBody?: { required?: boolean; content?: Record<string, { schema?: unknown }> };
}

export interface OpenApiDocument {
  paths: Record<string, Record<string, OpenApiOperation>>;
  components: { schemas: Record<string, unknown> };
}

let loading: Promise<OpenApiDocument> | undefined;

/**
 * GitHub's own OpenAPI description (13 MB): read once per process, and only when a test
 * first needs it.
 */
export function loadGitHubOpenApi(): Promise<OpenApiDocument> {
  loading ??= (async () => {
    const require = createRequire(import.meta.url);
    const file = require.resolve('@octokit/openapi/generated/api.github.com.json');
    return JSON.parse(await readFile(file, 'utf8')) as OpenApiDocument;
  })();
  return loading;
}
