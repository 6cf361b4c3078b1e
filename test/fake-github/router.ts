import type { AuthResult } from './app-auth.js';

export interface RouteRequest {
  method: string;
  /** Path below /api/v3, e.g. /repos/o/r/pulls/1 */
  path: string;
  params: Record<string, string>;
  query: URLSearchParams;
  body: unknown;
  auth: AuthResult;
}

export interface RouteResponse {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

/** Who may call a route: the app itself (JWT) or an installation (token). */
export type Caller = 'app' | 'installation' | 'user';

export type Handler = (req: RouteRequest) => Promise<RouteResponse> | RouteResponse;

interface Route {
  method: string;
  /** Path template as written in GitHub's OpenAPI description. */
  template: string;
  caller: Caller;
  pattern: RegExp;
  names: string[];
  handler: Handler;
}

/** Matches GitHub's OpenAPI path templates; `{path}` may span slashes (contents API). */
export class Router {
  private readonly routes: Route[] = [];

  add(method: string, template: string, caller: Caller, handler: Handler): void {
    const names: string[] = [];
    const source = template
      .split(/(\{[^}]+\})/)
      .map((part) => {
        if (!part.startsWith('{')) return part.replace(/[.*+?^$()|[\]\\]/g, '\\$&');
        const name = part.slice(1, -1);
        names.push(name);
        return name === 'path' || name === 'ref' ? '(.*)' : '([^/]+)';
      })
      .join('');
    this.routes.push({ method, template, caller, names, handler, pattern: new RegExp(`^${source}$`) });
  }

  /** "METHOD /template" for every route, for the OpenAPI validator. */
  served(): string[] {
    return [...new Set(this.routes.map((r) => `${r.method} ${r.template}`))];
  }

  match(method: string, path: string): { route: Route; params: Record<string, string> } | undefined {
    for (const route of this.routes) {
      if (route.method !== method) continue;
      const m = route.pattern.exec(path);
      if (!m) continue;
      const params: Record<string, string> = {};
      route.names.forEach((name, i) => (params[name] = decodeURIComponent(m[i + 1] ?? '')));
      return { route, params };
    }
    return undefined;
  }
}

export function githubError(status: number, message: string, extra: Record<string, unknown> = {}): RouteResponse {
  return {
    status,
    body: { message, documentation_url: 'https://docs.github.com/rest', status: String(status), ...extra },
  };
}

export const notFound = (): RouteResponse => githubError(404, 'Not Found');
