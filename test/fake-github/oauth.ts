/**
 * The App's OAuth user flow, as GitHub documents it for GitHub Apps (web application flow, with
 * PKCE): `GET /login/oauth/authorize` shows the person a page (here: which login to sign in as, and
 * an Authorize button), then sends the browser to `redirect_uri?code=…&state=…`; `POST
 * /login/oauth/access_token` trades the code (once, within ten minutes, with the client secret,
 * the same redirect_uri and the PKCE verifier) for a user token. Errors are answered as GitHub
 * does: 200 with `error` and `error_description`.
 * https://docs.github.com/en/apps/creating-github-apps/authenticating-with-a-github-app/generating-a-user-access-token-for-a-github-app
 */
import { createHash, randomBytes } from 'node:crypto';
import type { ServerResponse } from 'node:http';

const CODE_LIFETIME_MS = 10 * 60 * 1000;

interface PendingCode {
  login: string;
  clientId: string;
  redirectUri: string | null;
  challenge: string | null;
  method: string | null;
  expiresAt: number;
}

export class FakeOAuth {
  readonly clientId = `Iv1.${randomBytes(8).toString('hex')}`;
  readonly clientSecret = randomBytes(20).toString('hex');
  private readonly codes = new Map<string, PendingCode>();
  /** Every token exchange, with what it was answered. */
  readonly exchanges: { code: string; error: string | null }[] = [];

  constructor(private readonly issueToken: (login: string) => string) {}

  async handle(url: URL, res: ServerResponse, method: string, body: string, contentType: string | undefined): Promise<boolean> {
    if (url.pathname === '/login/oauth/authorize' && method === 'GET') return this.authorizePage(url, res);
    if (url.pathname === '/login/oauth/authorize' && method === 'POST') return this.authorize(new URLSearchParams(body), res);
    if (url.pathname === '/login/oauth/access_token' && method === 'POST') return this.accessToken(parseBody(body, contentType), res);
    return false;
  }

  private authorizePage(url: URL, res: ServerResponse): boolean {
    const q = url.searchParams;
    if (q.get('client_id') !== this.clientId) {
      res.writeHead(404, { 'content-type': 'text/html; charset=utf-8' }).end('<!doctype html><title>Not Found</title><h1>404</h1>');
      return true;
    }
    const hidden = ['client_id', 'redirect_uri', 'state', 'code_challenge', 'code_challenge_method']
      .map((name) => `<input type="hidden" name="${name}" value="${escape(q.get(name) ?? '')}">`)
      .join('');
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>Authorize application</title></head>
<body><main><h1>Authorize task-mgmt</h1>
<form method="post" action="/login/oauth/authorize">${hidden}
<p><label for="login">Sign in as</label> <input id="login" name="login" autocomplete="username"></p>
<p><button type="submit" name="authorize" value="1">Authorize</button> <button type="submit" name="authorize" value="0">Cancel</button></p>
</form></main></body></html>`);
    return true;
  }

  private authorize(form: URLSearchParams, res: ServerResponse): boolean {
    const redirectUri = form.get('redirect_uri');
    if (form.get('client_id') !== this.clientId || !redirectUri) {
      res.writeHead(400, { 'content-type': 'text/plain' }).end('bad request');
      return true;
    }
    const back = new URL(redirectUri);
    const state = form.get('state');
    if (state !== null) back.searchParams.set('state', state);
    if (form.get('authorize') !== '1' || !form.get('login')) {
      back.searchParams.set('error', 'access_denied');
      back.searchParams.set('error_description', 'The user has denied your application access.');
    } else {
      const code = randomBytes(10).toString('hex');
      this.codes.set(code, {
        login: form.get('login')!,
        clientId: this.clientId,
        redirectUri,
        challenge: form.get('code_challenge') || null,
        method: form.get('code_challenge_method') || null,
        expiresAt: Date.now() + CODE_LIFETIME_MS,
      });
      back.searchParams.set('code', code);
    }
    res.writeHead(302, { location: back.toString() }).end();
    return true;
  }

  private accessToken(params: Record<string, string>, res: ServerResponse): boolean {
    const answer = (body: Record<string, string>) => {
      res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' }).end(JSON.stringify(body));
      return true;
    };
    const fail = (error: string, description: string) => {
      this.exchanges.push({ code: params.code ?? '', error });
      return answer({ error, error_description: description, error_uri: 'https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors' });
    };
    if (params.client_id !== this.clientId || params.client_secret !== this.clientSecret) return fail('incorrect_client_credentials', 'The client_id and/or client_secret passed are incorrect.');
    const pending = this.codes.get(params.code ?? '');
    this.codes.delete(params.code ?? '');
    if (!pending || pending.expiresAt < Date.now()) return fail('bad_verification_code', 'The code passed is incorrect or expired.');
    if (params.redirect_uri !== undefined && params.redirect_uri !== pending.redirectUri) return fail('redirect_uri_mismatch', 'The redirect_uri MUST match the registered callback URL for this application.');
    if (pending.challenge !== null) {
      const verifier = params.code_verifier ?? '';
      const computed = pending.method === 'S256' ? createHash('sha256').update(verifier).digest('base64url') : verifier;
      if (computed !== pending.challenge) return fail('bad_verification_code', 'The code_verifier does not match the code_challenge supplied in the authorization request.');
    }
    this.exchanges.push({ code: params.code ?? '', error: null });
    return answer({ access_token: this.issueToken(pending.login), token_type: 'bearer', scope: '' });
  }
}

function parseBody(body: string, contentType: string | undefined): Record<string, string> {
  if (contentType?.includes('application/json')) {
    try {
      return Object.fromEntries(Object.entries(JSON.parse(body) as Record<string, unknown>).map(([k, v]) => [k, String(v)]));
    } catch {
      return {};
    }
  }
  return Object.fromEntries(new URLSearchParams(body));
}

function escape(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
