import { describe, expect, it } from 'vitest';
import { finalBaseImage, imagesToPull } from './dockerfile-images.js';
import { normaliseImageReference } from './image-reference.js';
import { repoDigest } from './docker-executor.js';
import { RegistryPolicy, type ResolveHost } from './registry-policy.js';

describe('normaliseImageReference', () => {
  it.each([
    ['ubuntu', 'docker.io', 'docker.io/library/ubuntu:latest'],
    ['ubuntu:22.04', 'docker.io', 'docker.io/library/ubuntu:22.04'],
    ['foo/bar', 'docker.io', 'docker.io/foo/bar:latest'],
    ['docker.io/ubuntu', 'docker.io', 'docker.io/library/ubuntu:latest'],
    ['index.docker.io/foo/bar:1', 'docker.io', 'docker.io/foo/bar:1'],
    ['ghcr.io/o/r:v1', 'ghcr.io', 'ghcr.io/o/r:v1'],
    ['host:5000/x', 'host:5000', 'host:5000/x:latest'],
    ['127.0.0.1:5999/x', '127.0.0.1:5999', '127.0.0.1:5999/x:latest'],
    ['localhost/x', 'localhost', 'localhost/x:latest'],
    ['localhost:5000/a/b:t', 'localhost:5000', 'localhost:5000/a/b:t'],
    ['[::1]:5000/x', '[::1]:5000', '[::1]:5000/x:latest'],
    ['Registry/x', 'Registry', 'Registry/x:latest'],
    [`busybox@sha256:${'a'.repeat(64)}`, 'docker.io', `docker.io/library/busybox@sha256:${'a'.repeat(64)}`],
    [`q.io/x:1@sha256:${'b'.repeat(64)}`, 'q.io', `q.io/x:1@sha256:${'b'.repeat(64)}`],
  ])('%s → registry %s, %s', (text, registry, canonical) => {
    const reference = normaliseImageReference(text);
    expect(reference.registry).toBe(registry);
    expect(reference.canonical).toBe(canonical);
  });

  it.each([
    ['', /empty/],
    ['Ubuntu', /repository name/],
    ['x:', /bad tag/],
    ['a b', /white space/],
    ['host:99999/x', /bad port/],
    ['x@sha256:12', /bad digest/],
    ['$R/x', /bad registry host/],
    ['-bad.io/x', /registry host/],
  ])('refuses %j', (text, why) => {
    expect(() => normaliseImageReference(text)).toThrow(why);
  });
});

describe('repoDigest', () => {
  const digest = (c: string) => `sha256:${c.repeat(64)}`;
  it.each([
    ['no digest known', [], 'busybox', null],
    ['the entry of the same repository', [`mirror.io/busybox@${digest('a')}`, `busybox@${digest('b')}`], 'busybox:1.36', `busybox@${digest('b')}`],
    ['another name of the same image', [`mirror.io/busybox@${digest('a')}`], 'busybox', `mirror.io/busybox@${digest('a')}`],
    ['a reference that names its digest', [], `ghcr.io/o/r@${digest('c')}`, `ghcr.io/o/r@${digest('c')}`],
  ] as const)('%s', (_name, entries, reference, expected) => {
    expect(repoDigest(entries, normaliseImageReference(reference))).toBe(expected);
  });
});

describe('finalBaseImage', () => {
  it.each([
    ['FROM busybox', 'busybox'],
    ['FROM busybox:1.36 AS build\nRUN true\nFROM alpine\nCOPY --from=build /a /b', 'alpine'],
    ['FROM busybox AS base\nFROM base AS build\nFROM BUILD', 'busybox'],
    ['FROM busybox AS build\nFROM scratch\nCOPY --from=build /a /b', null],
    ['ARG V=1.36\nFROM busybox:$V', 'busybox:1.36'],
    ['FROM busybox\nARG V=2\nFROM alpine:${V:-3}', 'alpine:3'],
    [`FROM ghcr.io/o/r@sha256:${'c'.repeat(64)}`, `ghcr.io/o/r@sha256:${'c'.repeat(64)}`],
    ['# just a comment', null],
  ])('%j stands on %j', (text, base) => {
    expect(finalBaseImage(text)).toBe(base);
  });

  it('takes build args as the build does', () => {
    expect(finalBaseImage('ARG V=1\nFROM busybox:$V', { V: '9' })).toBe('busybox:9');
  });
});

describe('imagesToPull', () => {
  const pulled = (text: string, args?: Record<string, string>) => imagesToPull(text, args).map((image) => `${image.line} ${image.instruction} ${image.reference}`);

  it.each([
    ['FROM busybox', ['1 FROM busybox']],
    ['ARG R=10.0.0.1:5000\nFROM $R/x', ['2 FROM 10.0.0.1:5000/x']],
    ['ARG R=10.0.0.1:5000\nFROM ${R}/x:${T:-1}', ['2 FROM 10.0.0.1:5000/x:1']],
    ['ARG R\nFROM ${R:-docker.io}/x', ['2 FROM docker.io/x']],
    ['ARG R="a.io" P=\'b\'\nFROM $R/$P', ['2 FROM a.io/b']],
    ['FROM busybox AS build\nFROM build\nFROM scratch\nFROM BUILD', ['1 FROM busybox']],
    ['FROM busybox\nCOPY --from=192.168.1.1/x /a /b', ['1 FROM busybox', '2 COPY --from 192.168.1.1/x']],
    ['FROM busybox AS one\nFROM busybox\nCOPY --from=one /a /b\nCOPY --from=0 /a /b', ['1 FROM busybox', '2 FROM busybox']],
    ['FROM busybox\nCOPY --from=0 /a /b', ['1 FROM busybox', '2 COPY --from 0']],
    ['FROM busybox\nCOPY --chown=1 --from=evil.io/x /a /b', ['1 FROM busybox', '2 COPY --from evil.io/x']],
    ['FROM busybox\nARG S=evil.io/y\nCOPY --from=$S /a /b', ['1 FROM busybox', '3 COPY --from evil.io/y']],
    ['ARG S=evil.io/z\nFROM busybox\nARG S\nCOPY --from=$S /a /b', ['2 FROM busybox', '4 COPY --from evil.io/z']],
    ['ARG S=evil.io/z\nFROM busybox\nCOPY --from=$S /a /b', ['2 FROM busybox', '3 COPY --from ']],
    ['FROM busybox\nENV S=evil.io/e\nCOPY --from="${S}" /a /b', ['1 FROM busybox', '3 COPY --from evil.io/e']],
    ['FROM busybox\nONBUILD COPY --from=evil.io/later /a /b', ['1 FROM busybox']],
    ['# escape=`\nARG R=a.io\nFROM `\n  $R/x', ['3 FROM a.io/x']],
    ['from \\\n 127.0.0.1:1/x', ['1 FROM 127.0.0.1:1/x']],
  ])('%j', (text, expected) => {
    expect(pulled(text)).toEqual(expected);
  });

  it('lets build args override the defaults of ARGs before FROM', () => {
    expect(pulled('ARG R=a.io\nFROM $R/x', { R: '10.1.1.1' })).toEqual(['2 FROM 10.1.1.1/x']);
  });

  it('refuses a substitution the builder does not know', () => {
    expect(() => imagesToPull('ARG R\nFROM ${R/a/b}/x')).toThrow(/unsupported substitution/);
  });
});

describe('RegistryPolicy', () => {
  const dns: Record<string, string[]> = {
    'registry-1.docker.io': ['52.1.1.1'],
    'ghcr.io': ['140.82.1.1', '2606:50c0::1'],
    'inside.example': ['10.2.3.4'],
    'mapped.example': ['::ffff:127.0.0.1'],
    'ula.example': ['fd00::5'],
    'meta.example': ['169.254.169.254'],
  };
  const resolveHost: ResolveHost = async (host) => {
    const addresses = dns[host];
    if (!addresses) throw Object.assign(new Error('not found'), { code: 'ENOTFOUND' });
    return addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
  };
  const refusal = (text: string, options: { present?: boolean; allowed?: string[] } = {}) =>
    new RegistryPolicy({ resolveHost, allowedRegistries: options.allowed }).refusal(normaliseImageReference(text), options.present ?? false);

  it.each([
    ['127.0.0.1:5999/x', /127\.0\.0\.1:5999 is an IP address, a loopback address/],
    ['0.0.0.0/x', /an unspecified address/],
    ['10.0.0.1:5000/x', /a private address/],
    ['[::1]:5000/x', /\[::1\]:5000 is an IP address, a loopback address/],
    ['8.8.8.8/x', /is an IP address; registries are named by host name/],
    ['localhost/x', /localhost\) *$|this machine/],
    ['LOCALHOST:5000/x', /this machine/],
    ['reg.localhost/x', /this machine/],
    ['inside.example/x', /inside\.example resolves to 10\.2\.3\.4, a private address/],
    ['mapped.example/x', /a loopback address/],
    ['ula.example/x', /a unique-local address/],
    ['meta.example/x', /a link-local address/],
    ['nowhere.example/x', /could not be resolved \(ENOTFOUND\)/],
  ])('refuses %s', async (text, why) => {
    expect(await refusal(text)).toMatch(why);
  });

  it.each(['busybox', 'ghcr.io/o/r'])('allows the public registry of %s', async (text) => {
    expect(await refusal(text)).toBeUndefined();
  });

  it('refuses a registry outside ALLOWED_REGISTRIES, unless the image is already present', async () => {
    expect(await refusal('busybox', { allowed: ['ghcr.io'] })).toMatch(/docker\.io is not in ALLOWED_REGISTRIES \(ghcr\.io\)/);
    expect(await refusal('ghcr.io/o/r', { allowed: ['ghcr.io'] })).toBeUndefined();
    expect(await refusal('busybox', { allowed: ['ghcr.io'], present: true })).toBeUndefined();
  });

  it('refuses loopback and address registries even for an image already present', async () => {
    expect(await refusal('127.0.0.1:5999/x', { present: true })).toMatch(/loopback/);
    expect(await refusal('localhost/x', { present: true })).toMatch(/this machine/);
  });
});
