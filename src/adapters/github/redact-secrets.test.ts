import { describe, expect, it } from 'vitest';
import { secretRedactor } from './redact-secrets.js';

const key = ['-----BEGIN RSA PRIVATE KEY-----', 'MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun', 'VTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK', '-----END RSA PRIVATE KEY-----'];

describe('secretRedactor', () => {
  const redact = secretRedactor({
    apiTokens: ['api-token-0123456789'],
    webhookSecret: 'hook-secret-abc',
    clientSecret: 'client-secret-xyz',
    sessionSecret: 'session-secret-0123456789abcdef0123456789',
    privateKey: key.join('\n'),
  });

  it.each([
    ['GITHUB_TOKEN=ghs_16C7e42F292c6912E7710c838347Ae178B4a', 'GITHUB_TOKEN=[redacted]'],
    ['ghp_abc gho_def ghu_ghi ghr_jkl', '[redacted] [redacted] [redacted] [redacted]'],
    ['pat github_pat_11AAAAAAA0_bbbbbbbbbbbbbbbb end', 'pat [redacted] end'],
    ['x-api-token-0123456789-y', 'x-[redacted]-y'],
    ['sig hook-secret-abc / client-secret-xyz', 'sig [redacted] / [redacted]'],
    ['key session-secret-0123456789abcdef0123456789.', 'key [redacted].'],
    [`before\n${key.join('\n')}\nafter`, 'before\n[redacted]\nafter'],
    ['-----BEGIN PRIVATE KEY-----\nMIIabc\n-----END PRIVATE KEY----- and -----BEGIN EC PRIVATE KEY-----\nxyz\n-----END EC PRIVATE KEY-----', '[redacted] and [redacted]'],
    [`log head\n${key.slice(0, 2).join('\n')}`, 'log head\n[redacted]'],
    [`${key.slice(2).join('\n')}\nlog tail`, '[redacted]\nlog tail'],
    [`the key line ${key[2]} alone`, 'the key line [redacted] alone'],
    ['-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----', '-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----'],
    ['nothing secret: ghsx_ not a token, neighs_ neither', 'nothing secret: ghsx_ not a token, neighs_ neither'],
  ])('%j → %j', (text, expected) => {
    expect(redact(text)).toBe(expected);
  });

  it('ignores secrets too short to look for, and takes linear time on a text full of markers', () => {
    expect(secretRedactor({ webhookSecret: 'a' })('a cat')).toBe('a cat');
    const hostile = '-----END RSA PRIVATE KEY-----'.repeat(20_000) + 'A'.repeat(200_000) + '-----BEGIN PRIVATE KEY-----'.repeat(20_000);
    const started = performance.now();
    redact(hostile);
    expect(performance.now() - started).toBeLessThan(1000);
  });
});
