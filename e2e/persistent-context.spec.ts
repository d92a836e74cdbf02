/**
 * `whittlePersistentTest` across runs: a nested Playwright run (e2e/persistent/) twice on the
 * same profile root, against this run's dev server. The first run seeds the project's profile;
 * the second, a new Playwright process and a new Chromium on the same user-data dir, finds the
 * model intact (`present`): no seed request, no model request in the browser's or the server's
 * log, golden tokens from the cache. In each run a second test flips a byte of the stored model
 * file, and seeding writes that file again. A profile another browser has open is refused with
 * a WhittleError that names it.
 */
import { test, expect, chromium } from '@playwright/test';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CHROMIUM_ARGS, CHROMIUM_PATH } from './chromium.ts';
import { modelFile } from './fixtures.ts';

interface JsonResult {
  status: string;
  error?: { message?: string };
  attachments: { name: string; body?: string }[];
}
interface JsonSuite {
  specs: { title: string; tests: { projectName: string; results: JsonResult[] }[] }[];
  suites?: JsonSuite[];
}
interface Seeded {
  status: 'seeded' | 'present';
  bytes: number;
  bytesWritten: number;
  seconds: number;
  context: string;
  discarded: { file: string; reason: string }[];
}
interface Wire {
  seedRequests: number;
  browserModelRequests: number;
  serverModelRequests: number;
  userDataDir: string;
}
/** Per project, per test title (its first word): status, error, whittle-seed and wire attachments. */
type RunReport = Map<string, { status: string; error?: string; seeded: Seeded; wire: Wire }>;

const BYTES = ['stories260K.bin', 'tok512.bin'].reduce((n, f) => n + modelFile('stories260K', f).size, 0);

function allSpecs(suite: JsonSuite): JsonSuite['specs'] {
  return [...suite.specs, ...(suite.suites ?? []).flatMap(allSpecs)];
}

/** One nested run on `root`; each project's result with its whittle-seed and wire attachments. */
async function nestedRun(root: string, baseURL: string, reportPath: string): Promise<RunReport> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(PW_|PLAYWRIGHT_|TEST_|NODE_OPTIONS$)/.test(k)));
  const stderr = await new Promise<string>((ok) => {
    const child = spawn('npx', ['--no-install', 'playwright', 'test', '-c', 'e2e/persistent/playwright.config.ts', '--reporter', 'json'], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: {
        ...env,
        WHITTLE_PERSISTENT_BASE_URL: baseURL,
        WHITTLE_PERSISTENT_ROOT: root,
        PLAYWRIGHT_JSON_OUTPUT_NAME: reportPath,
      },
    });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.once('exit', () => ok(err));
  });
  const report = JSON.parse(readFileSync(reportPath, 'utf8')) as { suites: JsonSuite[] };
  const out: RunReport = new Map();
  for (const spec of report.suites.flatMap(allSpecs))
    for (const t of spec.tests) {
      const result = t.results[0]!;
      const attached = (name: string) => {
        const a = result.attachments.find((x) => x.name === name);
        return a?.body === undefined ? undefined : JSON.parse(Buffer.from(a.body, 'base64').toString());
      };
      const key = `${t.projectName} ${spec.title.split(':')[0]}`;
      out.set(key, {
        status: result.status,
        error: result.error?.message ?? stderr,
        seeded: attached('whittle-seed'),
        wire: attached('wire'),
      });
    }
  return out;
}

test('a persistent profile seeded in one run is present in the next (nothing on the wire), and a damaged one is re-seeded', async ({
  baseURL,
}, testInfo) => {
  test.skip(testInfo.project.name !== 'wasm', 'the nested run starts its own Chromium; once is enough');
  test.setTimeout(120_000);
  const root = testInfo.outputPath('profiles');
  const first = await nestedRun(root, baseURL!, testInfo.outputPath('report-1.json'));
  const second = await nestedRun(root, baseURL!, testInfo.outputPath('report-2.json'));
  const modelBytes = modelFile('stories260K', 'stories260K.bin').size;
  const project = 'threads'; // the nested run's one project

  for (const [run, results] of [first, second].entries())
    for (const title of ['seeds or finds', 'damaged']) {
      const r = results.get(`${project} ${title}`);
      expect(r?.status, `run ${run + 1}, ${title}: ${r?.error}`).toBe('passed');
    }
  const one = first.get(`${project} seeds or finds`)!;
  const two = second.get(`${project} seeds or finds`)!;
  // First run, empty profile: seeded, through the seed route only (one chunk per file); the app
  // then made no model request.
  expect(one.seeded).toMatchObject({ status: 'seeded', bytes: BYTES, bytesWritten: BYTES, context: 'persistent', discarded: [] });
  expect(one.wire).toMatchObject({ seedRequests: 2, browserModelRequests: 0, serverModelRequests: 0 });
  expect(one.wire.userDataDir.startsWith(join(root, `${project}-`))).toBe(true);
  // Second run, a new Playwright process and Chromium on the same profile: found intact
  // (re-hashed), nothing fetched at all.
  expect(two.seeded).toMatchObject({ status: 'present', bytes: BYTES, bytesWritten: 0, context: 'persistent', discarded: [] });
  expect(two.wire).toMatchObject({ seedRequests: 0, browserModelRequests: 0, serverModelRequests: 0, userDataDir: one.wire.userDataDir });
  // In both runs, a flipped byte in the stored model file: discarded, and only that file written again.
  for (const results of [first, second]) {
    const damaged = results.get(`${project} damaged`)!.seeded;
    expect(damaged).toMatchObject({ status: 'seeded', bytesWritten: modelBytes, context: 'persistent' });
    expect(damaged.discarded).toEqual([
      { file: 'stories260K.bin', reason: expect.stringMatching(/^sha256 [0-9a-f]{64} != [0-9a-f]{64}$/) },
    ]);
  }
  await testInfo.attach('seconds to seed / to find present', { body: `${one.seeded.seconds} / ${two.seeded.seconds}` });
});

test('a profile another browser holds fails the test with a WhittleError naming the folder, instead of a second profile', async ({
  baseURL,
}, testInfo) => {
  test.skip(testInfo.project.name !== 'wasm', 'the nested run starts its own Chromium; once is enough');
  test.setTimeout(90_000);
  const root = testInfo.outputPath('profiles');
  const first = await nestedRun(root, baseURL!, testInfo.outputPath('report-1.json'));
  const { userDataDir } = first.get('threads seeds or finds')!.wire;
  // Another run's browser on the same profile (Chromium locks a user-data dir to one browser).
  const holder = await chromium.launchPersistentContext(userDataDir, { executablePath: CHROMIUM_PATH, args: [...CHROMIUM_ARGS] });
  try {
    const second = await nestedRun(root, baseURL!, testInfo.outputPath('report-2.json'));
    const r = second.get('threads seeds or finds')!;
    expect(r.status).toBe('failed');
    expect(r.error).toContain(
      `WhittleError: whittle/playwright: cannot launch a persistent context on ${userDataDir} (is another run using it?)`,
    );
    // The serial suite stops there: the next test is skipped, not run in a second profile.
    expect(second.get('threads damaged')!.status).toBe('skipped');
  } finally {
    await holder.close();
  }
});
