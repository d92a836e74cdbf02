/**
 * The conformance report's schema and the small validator the tests check reports with: a
 * well-formed report passes; each kind of violation is reported at its path; a keyword the
 * validator does not implement is refused rather than ignored.
 */
import { describe, expect, it } from 'vitest';
import { validateJsonSchema } from './json-schema.ts';
import { CONFORMANCE_REPORT_SCHEMA, type ConformanceReport } from './report.ts';

const schema = CONFORMANCE_REPORT_SCHEMA as unknown as Record<string, unknown>;

function report(): ConformanceReport {
  return {
    schema: 'whittle-conformance/1',
    startedAt: '2026-12-01T06:00:00.000Z',
    durationMs: 9821,
    userAgent: 'Chromium',
    url: 'http://127.0.0.1:8787/',
    checks: [
      { id: 'probe', status: 'pass', ms: 15, details: { available: true } },
      {
        id: 'golden-tokens',
        backend: 'wasm',
        status: 'pass',
        reference: 'llama2.c run.c greedy tokens',
        ms: 2451,
        details: { tokens: [403] },
      },
      { id: 'golden-tokens', backend: 'webgpu', status: 'skip', reason: 'this browser offers no WebGPU adapter', ms: 0, details: {} },
    ],
    summary: { pass: 2, fail: 0, skip: 1 },
  };
}

describe('conformance report schema', () => {
  it('accepts a well-formed report', () => {
    expect(validateJsonSchema(report(), schema)).toEqual([]);
  });
  it('reports each violation at its path', () => {
    const bad = report() as unknown as Record<string, unknown> & { checks: Record<string, unknown>[]; summary: Record<string, unknown> };
    bad.checks[1]!.status = 'ok';
    bad.checks[2]!.backend = 'cuda';
    delete bad.checks[0]!.ms;
    bad.summary.pass = 1.5;
    bad.extra = true;
    bad.schema = 'whittle-conformance/2';
    expect(validateJsonSchema(bad, schema).sort()).toEqual(
      [
        '$.checks[1].status: not one of pass, fail, skip',
        '$.checks[2].backend: not one of webgpu, wasm',
        '$.checks[0]: missing ms',
        '$.summary.pass: expected integer, got number',
        '$: unexpected property extra',
        '$.schema: expected "whittle-conformance/1"',
      ].sort(),
    );
  });
  it('a report with no checks, or a wrong type at the top, is invalid', () => {
    expect(validateJsonSchema({ ...report(), checks: [] }, schema)).toEqual(['$.checks: fewer than 1 items']);
    expect(validateJsonSchema([], schema)).toEqual(['$: expected object, got array']);
  });
  it('refuses a keyword it does not implement instead of ignoring it', () => {
    expect(() => validateJsonSchema(1, { type: 'number', maximum: 3 })).toThrow(/unsupported keyword maximum/);
  });
});
