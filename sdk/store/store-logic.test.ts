import { describe, expect, it } from 'vitest';
import { WhittleError } from '../../core/errors.ts';
import { validateManifest, entryKey, manifestBytes } from './manifest.ts';
import { parseContentRange, planResponse, rangeHeaderFor } from './resume.ts';
import { pickEvictions } from './lru.ts';

const sha = 'a'.repeat(64);
const good = { id: 'm', revision: 'r1', license: 'MIT', files: [{ name: 'w.bin', url: '/w.bin', size: 10, sha256: sha }] };

function codeOf(fn: () => unknown): string | null {
  try {
    fn();
    return null;
  } catch (e) {
    return e instanceof WhittleError ? e.code : 'not-a-WhittleError';
  }
}

describe('validateManifest', () => {
  it('accepts a good manifest and normalizes the hash case', () => {
    const m = validateManifest({ ...good, files: [{ ...good.files[0], sha256: sha.toUpperCase() }] });
    expect(m.files[0]!.sha256).toBe(sha);
    expect(entryKey(m)).toBe('m@r1');
    expect(manifestBytes(m)).toBe(10);
  });
  it.each([
    ['not an object', 42],
    ['missing id', { ...good, id: '' }],
    ['missing revision', { ...good, revision: undefined }],
    ['no files', { ...good, files: [] }],
    ['bad hash', { ...good, files: [{ ...good.files[0], sha256: 'xyz' }] }],
    ['negative size', { ...good, files: [{ ...good.files[0], size: -1 }] }],
    ['fractional size', { ...good, files: [{ ...good.files[0], size: 1.5 }] }],
    ['path traversal', { ...good, files: [{ ...good.files[0], name: '../etc/passwd' }] }],
    ['duplicate names', { ...good, files: [good.files[0], good.files[0]] }],
    ['missing url', { ...good, files: [{ ...good.files[0], url: '' }] }],
  ])('rejects %s with BAD_MODEL', (_label, input) => {
    expect(codeOf(() => validateManifest(input))).toBe('BAD_MODEL');
  });
});

describe('range / resume bookkeeping', () => {
  const file = { name: 'w.bin', size: 100 };
  it('asks for the rest of the file only when it has bytes', () => {
    expect(rangeHeaderFor(0)).toBeNull();
    expect(rangeHeaderFor(40)).toBe('bytes=40-');
  });
  it('parses Content-Range and rejects nonsense', () => {
    expect(parseContentRange('bytes 40-99/100')).toEqual({ start: 40, end: 99, total: 100 });
    expect(parseContentRange('bytes 40-99/*')).toEqual({ start: 40, end: 99, total: null });
    expect(parseContentRange('bytes 99-40/100')).toBeNull();
    expect(parseContentRange('bytes 40-100/100')).toBeNull();
    expect(parseContentRange(null)).toBeNull();
  });
  it('appends a matching 206, restarts on 200, discards a mismatched range or a 416 before the end', () => {
    expect(planResponse(file, 40, 206, { contentRange: 'bytes 40-99/100', contentLength: '60' })).toEqual({ kind: 'append' });
    expect(planResponse(file, 40, 206, { contentRange: 'bytes 0-99/100', contentLength: '100' }).kind).toBe('discard');
    expect(planResponse(file, 40, 206, { contentRange: 'bytes 30-99/100', contentLength: '70' }).kind).toBe('discard');
    expect(planResponse(file, 40, 206, { contentRange: null, contentLength: '60' }).kind).toBe('discard');
    expect(planResponse(file, 0, 206, { contentRange: 'bytes 10-99/100', contentLength: '90' }).kind).toBe('discard');
    expect(planResponse(file, 40, 200, { contentRange: null, contentLength: '100' })).toEqual({ kind: 'restart' });
    expect(planResponse(file, 100, 416, { contentRange: null, contentLength: null })).toEqual({ kind: 'complete' });
    expect(planResponse(file, 40, 416, { contentRange: 'bytes */100', contentLength: '180' }).kind).toBe('discard');
  });
  it('checks Content-Length only for an unencoded body (fetch decodes gzip; the header counts compressed bytes)', () => {
    expect(planResponse(file, 0, 200, { contentRange: null, contentLength: '37', contentEncoding: 'gzip' })).toEqual({ kind: 'restart' });
    expect(planResponse(file, 0, 200, { contentRange: null, contentLength: '100', contentEncoding: 'identity' })).toEqual({ kind: 'restart' });
    expect(codeOf(() => planResponse(file, 0, 200, { contentRange: null, contentLength: '37', contentEncoding: 'identity' }))).toBe('INTEGRITY');
    expect(planResponse(file, 40, 206, { contentRange: 'bytes 40-99/100', contentLength: '20', contentEncoding: 'br' }).kind).toBe('discard');
  });
  it('catches a server that disagrees with the manifest about the size', () => {
    expect(codeOf(() => planResponse(file, 0, 200, { contentRange: null, contentLength: '120' }))).toBe('INTEGRITY');
    expect(codeOf(() => planResponse(file, 40, 206, { contentRange: 'bytes 40-119/120', contentLength: '80' }))).toBe('INTEGRITY');
  });
  it('turns HTTP errors into NETWORK', () => {
    expect(codeOf(() => planResponse(file, 0, 404, { contentRange: null, contentLength: null }))).toBe('NETWORK');
  });
});

describe('pickEvictions', () => {
  const entries = [
    { key: 'a', bytes: 50, lastUsed: 3 },
    { key: 'b', bytes: 30, lastUsed: 1 },
    { key: 'c', bytes: 20, lastUsed: 2 },
  ];
  it('evicts nothing when the incoming bytes fit', () => {
    expect(pickEvictions(entries, 200, 100)).toEqual([]);
  });
  it('evicts least recently used first, only as many as needed', () => {
    expect(pickEvictions(entries, 100, 25)).toEqual(['b']);
    expect(pickEvictions(entries, 100, 45)).toEqual(['b', 'c']);
  });
  it('never evicts a protected entry and reports when room cannot be made', () => {
    expect(pickEvictions(entries, 100, 60, new Set(['a']))).toBeNull();
    expect(pickEvictions(entries, 100, 40, new Set(['b']))).toEqual(['c', 'a']);
  });
});
