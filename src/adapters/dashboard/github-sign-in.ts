/**
 * "Sign in with GitHub" through the App's own OAuth user flow, as GitHub documents it for GitHub
 * Apps: the browser goes to `/login/oauth/authorize` with the client id, a `state` and a PKCE
 * challenge; GitHub sends it back with a code, which is exchanged (with the client secret and the
 * PKCE verifier) at `/login/oauth/access_token` for a user token; `GET /user` names the user. The
 * token is used for that one question and then dropped: the session keeps only the login.
 * https://docs.github.com/en/apps/creating-github-apps/authenticating-with-a-github-app/generating-a-user-access-token-for-a-github-app
 */

export interface GithubSignInConfig {
  clientId: string;
  clientSecret: string;
  /** `https://github.com`, or a GitHub Enterprise host's address. */
  webUrl: string;
  /** The REST API's address. */
  apiUrl: string;
  /** Where GitHub sends the browser back: `<PUBLIC_URL>/login/callback`. */
  redirectUri: string;
}

export class SignInError extends Error {
  override readonly name = 'SignInError';
}

export class GithubSignIn {
  constructor(
    private readonly config: GithubSignInConfig,
    private readonly fetchImpl: typeof fetch = fetch,
  ) {}

  authorizeUrl(state: string, challenge: string): string {
    const url = new URL('/login/oauth/authorize', this.config.webUrl);
    url.searchParams.set('client_id', this.config.clientId);
    url.searchParams.set('redirect_uri', this.config.redirectUri);
    url.searchParams.set('state', state);
    url.searchParams.set('code_challenge', challenge);
    url.searchParams.set('code_challenge_method', 'S256');
    url.searchParams.set('allow_signup', 'false');
    return url.toString();
  }

  /** The login of whoever GitHub sent back with `code`; a SignInError says why not, in one line. */
  async login(code: string, verifier: string): Promise<string> {
    let token: string;
    try {
      const response = await this.fetchImpl(new URL('/login/oauth/access_token', this.config.webUrl), {
        method: 'POST',
        headers: { accept: 'application/json', 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          client_id: this.config.clientId,
          client_secret: this.config.clientSecret,
          code,
          redirect_uri: this.config.redirectUri,
          code_verifier: verifier,
        }),
        redirect: 'error',
        signal: AbortSignal.timeout(15_000),
      });
      const body = (await response.json().catch(() => ({}))) as { access_token?: unknown; error?: unknown; error_description?: unknown };
      if (typeof body.access_token !== 'string') {
        const why = typeof body.error_description === 'string' ? body.error_description : typeof body.error === 'string' ? body.error : `it answered ${response.status}`;
        throw new SignInError(`GitHub did not sign you in: ${why}`);
      }
      token = body.access_token;
    } catch (error) {
      if (error instanceof SignInError) throw error;
      throw new SignInError('GitHub could not be reached to finish signing in; try again');
    }
    const response = await this.fetchImpl(`${this.config.apiUrl}/user`, {
      headers: { authorization: `token ${token}`, accept: 'application/vnd.github+json' },
      signal: AbortSignal.timeout(15_000),
    }).catch(() => null);
    if (!response?.ok) throw new SignInError('GitHub did not say who you are; try again');
    const user = (await response.json()) as { login?: unknown; type?: unknown };
    if (typeof user.login !== 'string' || user.type === 'Bot') throw new SignInError('GitHub did not say who you are; try again');
    return user.login;
  }
}
