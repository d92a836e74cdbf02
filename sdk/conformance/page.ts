/**
 * The conformance page (index.html; dist/conformance.html, served by `npx whittle conformance`):
 * runs the checks on the device it is opened on, fills the table as they finish, and ends with
 * one JSON report in `#json`, on `window.whittleConformance`, and in the console.
 *
 * Query: `models` (the models folder, default '/models/'), `backends` (default 'webgpu,wasm').
 *
 * @example
 * // Playwright: await page.goto('http://127.0.0.1:8787/?backends=wasm');
 * // await page.waitForFunction(() => 'whittleConformance' in window);
 */
import type { Backend } from '../index.ts';
import { runConformance } from './checks.ts';
import type { ConformanceCheck, ConformanceReport } from './report.ts';

declare global {
  interface Window {
    whittleConformance?: ConformanceReport;
  }
}

const params = new URLSearchParams(location.search);
const backends = (params.get('backends') ?? 'webgpu,wasm').split(',').filter((b): b is Backend => b === 'webgpu' || b === 'wasm');
const status = document.getElementById('status')!;

function row(c: ConformanceCheck): void {
  const tr = document.createElement('tr');
  const cells = [c.id, c.backend ?? '', c.status, String(c.ms), c.reason ?? c.reference ?? ''];
  for (const [i, text] of cells.entries()) {
    const td = document.createElement('td');
    td.textContent = text;
    if (i === 2) td.className = c.status;
    tr.append(td);
  }
  document.getElementById('rows')!.append(tr);
  status.textContent = `running (${c.id}${c.backend ? ` on ${c.backend}` : ''} done)`;
}

async function main(): Promise<void> {
  const startedAt = new Date().toISOString();
  const t0 = performance.now();
  status.textContent = 'running';
  const checks = await runConformance({ modelsUrl: params.get('models') ?? '/models/', backends, onCheck: row });
  const count = (s: ConformanceCheck['status']) => checks.filter((c) => c.status === s).length;
  const report: ConformanceReport = {
    schema: 'whittle-conformance/1',
    startedAt,
    durationMs: Math.round(performance.now() - t0),
    userAgent: navigator.userAgent,
    url: location.href,
    checks,
    summary: { pass: count('pass'), fail: count('fail'), skip: count('skip') },
  };
  const json = JSON.stringify(report, null, 2);
  document.getElementById('json')!.textContent = json;
  const copy = document.getElementById('copy')!;
  copy.hidden = false;
  copy.onclick = () => void navigator.clipboard?.writeText(json);
  window.whittleConformance = report;
  console.log(JSON.stringify(report));
  status.textContent = `done: ${report.summary.pass} pass, ${report.summary.fail} fail, ${report.summary.skip} skip`;
}

main().catch((err: unknown) => {
  status.textContent = `error: ${err instanceof Error ? err.message : String(err)}`;
});
