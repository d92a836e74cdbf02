/**
 * Where whittlePersistentTest's profiles live: one folder per project and browser settings, one
 * per parallel worker inside it, stable across runs; and the project's context options it launches with.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { defaultProfileRoot, persistentContextOptions, profileDir, type ProfileKey } from './persistent-profile.ts';
import { whittleProject } from './projects.ts';

/** A project's profile key as the fixture builds it from a `whittleProject` preset. */
function keyOf(project: ReturnType<typeof whittleProject>, headless = true): ProfileKey {
  return {
    projectName: project.name!,
    browserName: 'chromium',
    channel: project.use!.channel,
    headless,
    launchOptions: project.use!.launchOptions!,
  };
}

const root = '/app/node_modules/.cache/whittle-playwright';

describe('profileDir', () => {
  it('is the same folder for the same project and settings, run after run', () => {
    const wasm = whittleProject('wasm', { executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
    const dir = profileDir(root, keyOf(wasm), 0);
    expect(dir).toMatch(/^\/app\/node_modules\/\.cache\/whittle-playwright\/wasm-[0-9a-f]{10}\/worker-0$/);
    expect(profileDir(root, keyOf(whittleProject('wasm', { executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] })), 0)).toBe(dir);
  });

  it('differs between the presets, whose flags differ, and whenever a browser setting changes', () => {
    const options = { executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] };
    const dirs = ['webgpu', 'webgpu-swiftshader', 'wasm', 'wasm-threads'].map((t) =>
      profileDir(root, keyOf(whittleProject(t as 'wasm', { ...options, name: 'same-name', platform: 'linux' })), 0),
    );
    // Same project name: webgpu-swiftshader's and webgpu's flags (Linux) set them apart; wasm and
    // wasm-threads launch the very same browser, so sharing a name they would share a profile.
    expect(new Set(dirs).size).toBe(3);
    const base = keyOf(whittleProject('wasm', options));
    const variants: ProfileKey[] = [
      { ...base, headless: false },
      { ...base, channel: 'chrome' },
      { ...base, launchOptions: { ...base.launchOptions, executablePath: '/opt/chrome/chrome' } },
      { ...base, launchOptions: { ...base.launchOptions, args: ['--no-sandbox', '--enable-unsafe-webgpu'] } },
      { ...base, launchOptions: { ...base.launchOptions, ignoreDefaultArgs: ['--mute-audio'] } },
    ];
    const all = [base, ...variants].map((k) => profileDir(root, k, 0));
    expect(new Set(all).size).toBe(all.length);
  });

  it('gives each parallel worker of a project its own folder beside the others', () => {
    const key = keyOf(whittleProject('wasm'));
    const [a, b] = [profileDir(root, key, 0), profileDir(root, key, 1)];
    expect(a).not.toBe(b);
    expect(join(a, '..')).toBe(join(b, '..'));
  });

  it('keeps a folder name safe from any project name', () => {
    const key = { ...keyOf(whittleProject('wasm')), projectName: '../GPU job: nvidia/ampere' };
    expect(profileDir(root, key, 2)).toMatch(
      /^\/app\/node_modules\/\.cache\/whittle-playwright\/\.\._GPU_job_nvidia_ampere-[0-9a-f]{10}\/worker-2$/,
    );
  });
});

it('defaultProfileRoot is the cache folder beside the config', () => {
  expect(defaultProfileRoot('/home/me/app')).toBe('/home/me/app/node_modules/.cache/whittle-playwright');
});

describe('persistentContextOptions', () => {
  it("takes the project's context settings, named ones over contextOptions, and leaves launch and test settings out", () => {
    const options = persistentContextOptions({
      baseURL: 'http://127.0.0.1:4173',
      viewport: { width: 800, height: 600 },
      contextOptions: { locale: 'fr-FR', viewport: { width: 1, height: 1 } },
      launchOptions: { args: ['--no-sandbox'] },
      whittleTarget: 'wasm',
      headless: true,
      ignoreHTTPSErrors: undefined,
    });
    expect(options).toEqual({ locale: 'fr-FR', viewport: { width: 800, height: 600 }, baseURL: 'http://127.0.0.1:4173' });
  });
});
