/**
 * `npm run models`: puts every registry file under public/models/<id>/<name>, verified.
 *
 *   tsx models/fetch.ts [--mirror DIR] [--only id,id] [--json]
 *
 * Source order per file: already present and verified -> keep; the project's own folder
 * (`path`) -> copy; the mirror directory -> copy; otherwise download `url`. Every file is
 * sha256-checked *before* it is moved into place (written to a .part file, then renamed), so a
 * bad copy or an interrupted download never looks fetched. Also writes
 * public/models/manifests.json: the manifests the browser store downloads from.
 */
import { existsSync, mkdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { copyFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { REPO_ROOT, readRegistry, sha256File } from './local.ts';
import { SERVED_DIR, SERVED_URL_PREFIX, type RegistryFile, type RegistryModel } from './registry.ts';


async function download(url: string, dest: string): Promise<void> {
  const res = await fetch(url, { redirect: 'follow' });
  if (!res.ok || !res.body) throw new Error(`GET ${url}: HTTP ${res.status}`);
  const bytes = new Uint8Array(await res.arrayBuffer());
  writeFileSync(dest, bytes);
}

type Source = 'present' | 'repo' | 'mirror' | 'upstream';

async function fetchFile(model: RegistryModel, file: RegistryFile, mirror: string | undefined): Promise<Source> {
  const dest = join(REPO_ROOT, SERVED_DIR, model.id, file.name);
  mkdirSync(dirname(dest), { recursive: true });
  if (existsSync(dest) && statSync(dest).size === file.size && (await sha256File(dest)) === file.sha256) return 'present';

  const part = `${dest}.part`;
  let source: Source;
  if (model.path) {
    await copyFile(join(REPO_ROOT, model.path, file.name), part);
    source = 'repo';
  } else if (mirror && file.mirror && existsSync(join(mirror, file.mirror))) {
    await copyFile(join(mirror, file.mirror), part);
    source = 'mirror';
  } else if (file.url) {
    await download(file.url, part);
    source = 'upstream';
  } else {
    throw new Error(`${model.id}/${file.name}: not in the mirror and no upstream URL`);
  }
  const size = statSync(part).size;
  const hash = await sha256File(part);
  if (size !== file.size || hash !== file.sha256) {
    rmSync(part, { force: true });
    throw new Error(
      `${model.id}/${file.name} from ${source}: expected ${file.size} bytes sha256 ${file.sha256}, got ${size} bytes sha256 ${hash}`,
    );
  }
  renameSync(part, dest);
  return source;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { mirror: { type: 'string' }, only: { type: 'string' }, json: { type: 'boolean', default: false } },
  });
  const mirror = values.mirror ? resolve(values.mirror) : undefined;
  if (mirror && !existsSync(mirror)) console.warn(`mirror ${mirror} does not exist; downloading from upstream`);
  const only = values.only ? new Set(values.only.split(',')) : null;
  const registry = readRegistry();
  const report: { id: string; file: string; source: Source }[] = [];
  for (const model of registry.models) {
    if (only && !only.has(model.id)) continue;
    for (const file of model.files) {
      const source = await fetchFile(model, file, mirror && existsSync(mirror) ? mirror : undefined);
      report.push({ id: model.id, file: file.name, source });
      if (!values.json) console.log(`${model.id}/${file.name}: ${source}`);
    }
  }
  // Browser manifests: same facts, URLs pointing at the dev server's copy.
  const manifests = registry.models.map((m) => ({
    id: m.id,
    revision: m.revision,
    kind: m.kind,
    format: m.format,
    license: m.license,
    files: m.files.map((f) => ({ name: f.name, size: f.size, sha256: f.sha256, url: `${SERVED_URL_PREFIX}${m.id}/${f.name}` })),
  }));
  writeFileSync(join(REPO_ROOT, SERVED_DIR, 'manifests.json'), JSON.stringify({ version: 1, models: manifests }, null, 2));
  if (values.json) console.log(JSON.stringify({ files: report }));
}

main().catch((err: unknown) => {
  console.error(`models: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
