import { describe, expect, it } from 'vitest';
import { GatewayRequestError, matchesEtag, maxPathSegments, parseGatewayRequest, parseRange } from './ipfs-gateway-request.js';

const v0 = 'QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o';
const parse = (path: string, accept?: string) => parseGatewayRequest(new URL(path, 'http://gateway.test'), accept);

function refusal(path: string, accept?: string): { status: number; message: string } {
  try {
    parse(path, accept);
  } catch (error) {
    if (error instanceof GatewayRequestError) return { status: error.status, message: error.message };
    throw error;
  }
  throw new Error(`${path} was accepted`);
}

describe('parseGatewayRequest', () => {
  it.each([
    ['no format: the content itself', `/ipfs/${v0}`, undefined, { kind: 'plain' }, false],
    ['a browser', `/ipfs/${v0}`, 'text/html,application/xhtml+xml,*/*;q=0.8', { kind: 'plain' }, false],
    ['Accept raw', `/ipfs/${v0}`, 'application/vnd.ipld.raw', { kind: 'raw' }, true],
    ['format=raw', `/ipfs/${v0}?format=raw`, undefined, { kind: 'raw' }, false],
    ['format wins over Accept', `/ipfs/${v0}?format=raw`, 'application/vnd.ipld.car', { kind: 'raw' }, false],
    ['Accept car: all, once each', `/ipfs/${v0}`, 'application/vnd.ipld.car', { kind: 'car', scope: 'all', dups: false, entityBytes: null }, true],
    ['Accept car with its parameters', `/ipfs/${v0}`, 'application/vnd.ipld.car; version=1; order=dfs; dups=y', { kind: 'car', scope: 'all', dups: true, entityBytes: null }, true],
    ['car-dups wins over Accept', `/ipfs/${v0}?car-dups=n`, 'application/vnd.ipld.car;dups=y', { kind: 'car', scope: 'all', dups: false, entityBytes: null }, true],
    ['q orders the ranges', `/ipfs/${v0}`, 'text/html;q=0.5, application/vnd.ipld.raw', { kind: 'raw' }, true],
    ['an unserved CAR shape gives way to the next range', `/ipfs/${v0}`, 'application/vnd.ipld.car;version=2, application/vnd.ipld.raw;q=0.5', { kind: 'raw' }, true],
    ['dag-scope=entity', `/ipfs/${v0}?format=car&dag-scope=entity`, undefined, { kind: 'car', scope: 'entity', dups: false, entityBytes: null }, false],
    ['dag-scope=block', `/ipfs/${v0}?format=car&dag-scope=block`, undefined, { kind: 'car', scope: 'block', dups: false, entityBytes: null }, false],
    [
      'entity-bytes implies entity',
      `/ipfs/${v0}?format=car&dag-scope=all&entity-bytes=-1024:*`,
      undefined,
      { kind: 'car', scope: 'entity', dups: false, entityBytes: { from: -1024, to: '*' } },
      false,
    ],
  ] as const)('%s', (_label, path, accept, format, negotiated) => {
    const request = parse(path, accept);
    expect(request.format).toEqual(format);
    expect(request.negotiated).toBe(negotiated);
  });

  it('reads the CID, the decoded segments, a trailing slash and the path as sent', () => {
    const request = parse(`/ipfs/${v0}/a%20folder/caf%C3%A9.txt/?filename=x.txt&download=true`);
    expect(request.cid.toString()).toBe(v0);
    expect(request.segments).toEqual(['a folder', 'café.txt']);
    expect(request.trailingSlash).toBe(true);
    expect(request.contentPath).toBe(`/ipfs/${v0}/a%20folder/caf%C3%A9.txt/`);
    expect(request.filename).toBe('x.txt');
    expect(request.download).toBe(true);
  });

  it.each([
    ['no CID', '/ipfs/', undefined, 400],
    ['not a CID', '/ipfs/not-a-cid', undefined, 400],
    ['bad percent-encoding', `/ipfs/${v0}/%E0%A4%A`, undefined, 400],
    ['an encoded slash', `/ipfs/${v0}/a%2Fb`, undefined, 400],
    ['an encoded NUL', `/ipfs/${v0}/a%00b`, undefined, 400],
    ['a folder name ending in a backslash', `/ipfs/${v0}/a%5C/b`, undefined, 400],
    ['too many segments', `/ipfs/${v0}/${'a/'.repeat(maxPathSegments)}b`, undefined, 400],
    ['too long', `/ipfs/${v0}/${'a'.repeat(5000)}`, undefined, 400],
    ['an unserved format', `/ipfs/${v0}?format=tar`, undefined, 400],
    ['a raw block with a path', `/ipfs/${v0}/a?format=raw`, undefined, 400],
    ['a bad dag-scope', `/ipfs/${v0}?format=car&dag-scope=some`, undefined, 400],
    ['a bad entity-bytes', `/ipfs/${v0}?format=car&entity-bytes=1-2`, undefined, 400],
    ['entity-bytes backwards', `/ipfs/${v0}?format=car&entity-bytes=9:2`, undefined, 400],
    ['CARv2 asked by parameter', `/ipfs/${v0}?format=car&car-version=2`, undefined, 400],
    ['only an unserved CAR shape accepted', `/ipfs/${v0}`, 'application/vnd.ipld.car;version=2', 406],
  ] as const)('refuses %s', (_label, path, accept, status) => {
    const { status: got, message } = refusal(path, accept);
    expect(got).toBe(status);
    expect(message).not.toContain('\n');
  });
});

describe('parseRange', () => {
  it.each([
    ['none', undefined, 100, null],
    ['a closed range', 'bytes=0-9', 100, { start: 0, end: 9 }],
    ['an open range', 'bytes=90-', 100, { start: 90, end: 99 }],
    ['a suffix', 'bytes=-10', 100, { start: 90, end: 99 }],
    ['a suffix longer than the body', 'bytes=-500', 100, { start: 0, end: 99 }],
    ['an end past the body', 'bytes=50-500', 100, { start: 50, end: 99 }],
    ['a start past the body', 'bytes=100-', 100, 'unsatisfiable'],
    ['any range of an empty body', 'bytes=0-', 0, 'unsatisfiable'],
    ['a zero suffix', 'bytes=-0', 100, 'unsatisfiable'],
    ['several ranges: the whole body', 'bytes=0-1,5-6', 100, null],
    ['another unit', 'items=0-1', 100, null],
    ['backwards', 'bytes=9-2', 100, null],
  ] as const)('%s', (_label, header, size, expected) => {
    expect(parseRange(header, size)).toEqual(expected);
  });
});

describe('matchesEtag', () => {
  it.each([
    [undefined, false],
    ['"a"', true],
    ['W/"a"', true],
    ['"b", "a"', true],
    ['"b"', false],
    ['*', true],
  ] as const)('If-None-Match: %s', (header, expected) => {
    expect(matchesEtag(header, '"a"')).toBe(expected);
  });
});
