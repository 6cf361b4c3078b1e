import { createPublicKey, generateKeyPairSync, randomBytes, verify, type KeyObject } from 'node:crypto';

/** GitHub installation tokens live one hour. */
export const TOKEN_LIFETIME_MS = 60 * 60 * 1000;

export type AuthResult =
  | { kind: 'app' }
  | { kind: 'installation'; installationId: number }
  | { kind: 'user'; login: string }
  | { kind: 'none'; message: string };

/**
 * The GitHub App's identity as GitHub sees it: the key pair (GitHub keeps the public half),
 * JWT verification, and the installation tokens exchanged for a valid JWT.
 */
export class AppAuth {
  readonly privateKey: string;
  private readonly publicKey: KeyObject;
  private readonly tokens = new Map<string, { installationId: number; expiresAt: number }>();

  constructor(
    readonly appId: number,
    private readonly now: () => number = Date.now,
  ) {
    // PKCS#1 PEM, the format GitHub hands out when an app's private key is generated.
    const pair = generateKeyPairSync('rsa', {
      modulusLength: 2048,
      privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
      publicKeyEncoding: { type: 'spki', format: 'pem' },
    });
    this.privateKey = pair.privateKey;
    this.publicKey = createPublicKey(pair.publicKey);
  }

  issueToken(installationId: number): { token: string; expiresAt: Date } {
    const token = `ghs_${randomBytes(18).toString('base64url')}`;
    const expiresAt = this.now() + TOKEN_LIFETIME_MS;
    this.tokens.set(token, { installationId, expiresAt });
    // GitHub reports expires_at to the second.
    return { token, expiresAt: new Date(Math.floor(expiresAt / 1000) * 1000) };
  }

  private readonly userTokens = new Map<string, string>();

  /** A personal or OAuth token of a user (`ghu_…`), as a user's own client would hold. */
  issueUserToken(login: string): string {
    const token = `ghu_${randomBytes(18).toString('base64url')}`;
    this.userTokens.set(token, login);
    return token;
  }

  /** Reads the Authorization header the way GitHub does: a JWT means the app, else a token. */
  authenticate(header: string | undefined): AuthResult {
    if (!header) return { kind: 'none', message: 'Requires authentication' };
    const match = /^(token|bearer)\s+(\S+)$/i.exec(header.trim());
    if (!match?.[2]) return { kind: 'none', message: 'Bad credentials' };
    const credential = match[2];
    if (credential.split('.').length === 3) {
      const problem = this.verifyJwt(credential);
      return problem ? { kind: 'none', message: problem } : { kind: 'app' };
    }
    const user = this.userTokens.get(credential);
    if (user !== undefined) return { kind: 'user', login: user };
    const entry = this.tokens.get(credential);
    if (!entry || entry.expiresAt <= this.now()) return { kind: 'none', message: 'Bad credentials' };
    return { kind: 'installation', installationId: entry.installationId };
  }

  /** Returns why the JWT is not acceptable, or undefined when it is. */
  verifyJwt(jwt: string): string | undefined {
    const [header = '', payload = '', signature = ''] = jwt.split('.');
    let head: { alg?: string };
    let claims: { iss?: unknown; iat?: unknown; exp?: unknown };
    try {
      head = JSON.parse(Buffer.from(header, 'base64url').toString('utf8'));
      claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
    } catch {
      return 'A JSON web token could not be decoded';
    }
    if (head.alg !== 'RS256') return "'alg' must be RS256";
    const valid = verify('RSA-SHA256', Buffer.from(`${header}.${payload}`), this.publicKey, Buffer.from(signature, 'base64url'));
    if (!valid) return 'A JSON web token could not be decoded';
    if (String(claims.iss) !== String(this.appId)) return "'Issuer' claim ('iss') must be an Integer";
    const nowSec = Math.floor(this.now() / 1000);
    if (typeof claims.exp !== 'number' || claims.exp <= nowSec) return "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires";
    if (typeof claims.iat !== 'number' || claims.iat > nowSec + 60) return "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued";
    // GitHub refuses JWTs valid for more than ten minutes.
    if (claims.exp - claims.iat > 600 + 60) return "'Expiration time' claim ('exp') is too far in the future";
    return undefined;
  }
}
