/**
 * The conformance report: what `npx whittle conformance` (and the page it serves) prints, one
 * JSON object per device, and its JSON Schema (shipped as dist/conformance/report.schema.json).
 *
 * @example
 * const report: ConformanceReport = await page.evaluate(() => window.whittleConformance);
 * console.log(report.summary); // { pass: 9, fail: 0, skip: 3 }
 */

/**
 * The result of one check (on one backend, where it has one).
 *
 * @example
 * const failed = report.checks.filter((c: ConformanceCheck) => c.status === 'fail');
 */
export interface ConformanceCheck {
  /** 'probe', 'golden-tokens', 'pruned-plan', 'early-exit', 'self-speculation', 'codec-round-trip', 'storage'. */
  id: string;
  backend?: 'webgpu' | 'wasm';
  status: 'pass' | 'fail' | 'skip';
  /** Why it failed or was skipped, in words. */
  reason?: string;
  /** The reference the check compared against (e.g. "llama2.c run.c greedy tokens"). */
  reference?: string;
  ms: number;
  /** Measurements and observations (numbers, strings, booleans, arrays of them). */
  details: Record<string, unknown>;
}

/**
 * The whole report for the device the page was opened on.
 *
 * @example
 * const { summary }: ConformanceReport = window.whittleConformance!;
 */
export interface ConformanceReport {
  schema: 'whittle-conformance/1';
  startedAt: string;
  durationMs: number;
  userAgent: string;
  url: string;
  checks: ConformanceCheck[];
  summary: { pass: number; fail: number; skip: number };
}

const CHECK_IDS = ['probe', 'golden-tokens', 'pruned-plan', 'early-exit', 'self-speculation', 'codec-round-trip', 'storage'];

/**
 * JSON Schema (draft 2020-12) of {@link ConformanceReport}; also dist/conformance.report.schema.json.
 *
 * @example
 * expect(validateJsonSchema(report, CONFORMANCE_REPORT_SCHEMA)).toEqual([]);
 */
export const CONFORMANCE_REPORT_SCHEMA = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  $id: 'https://github.com/whittle/whittle/conformance/report.schema.json',
  title: 'Whittle conformance report',
  type: 'object',
  required: ['schema', 'startedAt', 'durationMs', 'userAgent', 'url', 'checks', 'summary'],
  additionalProperties: false,
  properties: {
    schema: { const: 'whittle-conformance/1' },
    startedAt: { type: 'string', minLength: 1 },
    durationMs: { type: 'number', minimum: 0 },
    userAgent: { type: 'string' },
    url: { type: 'string' },
    checks: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        required: ['id', 'status', 'ms', 'details'],
        additionalProperties: false,
        properties: {
          id: { enum: CHECK_IDS },
          backend: { enum: ['webgpu', 'wasm'] },
          status: { enum: ['pass', 'fail', 'skip'] },
          reason: { type: 'string', minLength: 1 },
          reference: { type: 'string', minLength: 1 },
          ms: { type: 'number', minimum: 0 },
          details: { type: 'object' },
        },
      },
    },
    summary: {
      type: 'object',
      required: ['pass', 'fail', 'skip'],
      additionalProperties: false,
      properties: { pass: { type: 'integer', minimum: 0 }, fail: { type: 'integer', minimum: 0 }, skip: { type: 'integer', minimum: 0 } },
    },
  },
} as const;
