/**
 * `whittle` command line (Node): runs the same TextEngine a worker runs, on onnxruntime-web's
 * WASM build through workers/ort/runtime.ts.
 *
 *   whittle generate --model stories260K --prompt "Once upon a time" --max-tokens 64 --greedy [--exit 3] [--layers 0,1,3] [--json]
 *   whittle export --model stories260K --out dist/stories260K-tjs [--layers 0,1,3]
 *   whittle models [--json]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { WhittleError, asWhittleError } from '../../core/errors.ts';
import { readRegistry } from '../../models/local.ts';
import { fullPlan, type LlamaPlan, type WeightsSetting } from '../../models/llama/types.ts';
import type { SparsitySetting } from '../../models/compress/sparsity-select.ts';
import { exportForTransformersJs } from '../../models/llama/export/transformersjs.ts';
import { loadOrt } from '../../workers/ort/runtime.ts';
import type { DropoutOptions, GenerateOptions } from '../../core/text-types.ts';
import { TextEngine } from '../../workers/text/engine.ts';
import { loadModelArg, openModelArg } from './load.ts';
import { presentDir } from './registry-files.ts';
import { runCodecCommand } from './codec.ts';
import { conformanceCommand } from './conformance.ts';
import { writeFolderManifest } from './write-manifest.ts';
import { compressToFolder, isVariantFolderArg, openVariantFolder } from './compress.ts';

const USAGE = `usage:
  whittle generate --model <id|folder|url> [--integrity none] [--prompt TEXT] [--max-tokens N] [--greedy]
                   [--temperature T] [--top-k K] [--top-p P] [--repetition-penalty R] [--seed S]
                   [--layers 0,1,3] [--exit E] [--speculate [--exit E|auto] [--draft D|auto]]
                   [--attention auto|gqa|onnx|plain] [--weights f32|q8|q4 [--group 32|64|128]] [--threads N] [--json]
                   [--dropout [--context prompt|S:E,S:E] [--members N] [--rates 0.3,0.5,0.7] [--dropout-top-k K] [--dropout-seed S]]
                   --dropout: dropout decoding over the marked context tokens (prompt token ranges
                   [S, E); default the whole prompt): members drop uncertain relevant tokens, majority vote.
                   --exit E alone decodes through the exit after E kept layers; with --speculate the
                   exit drafts (D tokens a round, or adapted every round with 'auto', the default) and
                   the whole plan verifies them; greedy output is identical to full depth, sampled
                   output has its distribution. Without --exit (or with 'auto') a calibration picks it.
  whittle export --model <id|folder|url> [--integrity none] --out DIR [--layers 0,1,3]   (transformers.js / optimum folder)
  --model takes a registry id, a local model folder (Hugging Face layout, sharded or not, or
  llama2.c) or an http(s) folder URL; a URL folder without a whittle.json (sha256s) loads only
  with --integrity none (sizes checked, nothing verified).
  whittle models [--json]
  whittle compress <id|folder|url> --weights q8|q4 [--group 32|64|128] [--head f32|q8] --out DIR [--integrity none]
                   [--sparsity 2:4|unstructured[:RATIO]] [--sparsity-method wanda|magnitude]
                   writes a compressed variant folder (model.whittle.safetensors + config, tokenizer,
                   whittle.json) that w.text(url) and 'generate --model DIR' load without quantizing;
                   --sparsity masks the block linears first (Wanda on the built-in calibration text)
                   and stores them sparse (--weights f32 allowed with it)
  whittle manifest <folder> [--revision R] [--license L]   (writes the folder's whittle.json: sizes + sha256)
  whittle codec encode|decode|roundtrip|rates ...   (Lyra v2; 'whittle codec' for its options)
  whittle conformance [--port 8787] [--host 127.0.0.1] [--models DIR]
                   serves the conformance page (Whittle's feature matrix on the device that opens it,
                   a JSON report + a table) and DIR as /models/ (default ./public/models), with COOP/COEP`;

function usage(message: string): never {
  throw new WhittleError('INVALID_ARGUMENT', `${message}\n${USAGE}`);
}

function num(value: string | undefined, name: string, integer = false): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || (integer && !Number.isInteger(n))) usage(`--${name} must be a${integer ? 'n integer' : ' number'}, got '${value}'`);
  return n;
}

function models(json: boolean): void {
  const list = readRegistry().models.map((m) => {
    const path = presentDir(m);
    return { id: m.id, kind: m.kind, format: m.format, description: m.description, present: path !== null, path };
  });
  if (json) console.log(JSON.stringify(list));
  else for (const m of list) console.log(`${m.present ? '✓' : ' '} ${m.id.padEnd(20)} ${m.kind.padEnd(6)} ${m.format.padEnd(8)} ${m.description}`);
}

async function generate(args: string[]): Promise<void> {
  const { values: v } = parseArgs({
    args,
    strict: true,
    options: {
      model: { type: 'string' },
      integrity: { type: 'string' },
      prompt: { type: 'string', default: '' },
      'max-tokens': { type: 'string' },
      greedy: { type: 'boolean', default: false },
      temperature: { type: 'string' },
      'top-k': { type: 'string' },
      'top-p': { type: 'string' },
      'repetition-penalty': { type: 'string' },
      seed: { type: 'string' },
      layers: { type: 'string' },
      exit: { type: 'string' },
      speculate: { type: 'boolean', default: false },
      draft: { type: 'string' },
      dropout: { type: 'boolean', default: false },
      context: { type: 'string' },
      members: { type: 'string' },
      rates: { type: 'string' },
      'dropout-top-k': { type: 'string' },
      'dropout-seed': { type: 'string' },
      attention: { type: 'string', default: 'auto' },
      weights: { type: 'string', default: 'f32' },
      group: { type: 'string' },
      threads: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  });
  if (!v.model) usage('--model is required');
  if (v.weights !== 'f32' && v.weights !== 'q8' && v.weights !== 'q4') usage('--weights must be f32, q8 or q4');
  const group = num(v.group, 'group', true);
  if (group !== undefined && group !== 32 && group !== 64 && group !== 128) usage('--group must be 32, 64 or 128');
  const compress: WeightsSetting | undefined = v.weights === 'f32' ? undefined : { linear: v.weights, ...(group ? { group } : {}) };
  const attention = v.attention;
  if (attention !== 'auto' && attention !== 'gqa' && attention !== 'onnx' && attention !== 'plain') usage(`--attention must be auto, gqa, onnx or plain`);
  // [variant] A folder `whittle compress` wrote runs its packed weights: nothing to quantize.
  const variantDir = isVariantFolderArg(v.model);
  const variant = variantDir ? await openVariantFolder(variantDir) : null;
  if (variant && compress) usage(`${v.model} is a compressed variant (${JSON.stringify(variant.info.setting)}); leave out --weights`);
  const model = variant ? variant.model : await openModelArg(v.model, integrityOf(v.integrity));
  const plan: LlamaPlan = v.layers !== undefined
    ? { layers: parseLayers(v.layers) }
    : fullPlan(model.config);
  const exitAuto = v.exit === 'auto';
  if (exitAuto && !v.speculate) usage("--exit auto needs --speculate");
  const exit = exitAuto ? undefined : num(v.exit, 'exit', true);
  if (exit !== undefined && !v.speculate) plan.exit = exit;
  if (v.draft !== undefined && !v.speculate) usage('--draft needs --speculate');
  const dropoutFlags = (['context', 'members', 'rates', 'dropout-top-k', 'dropout-seed'] as const).filter((k) => v[k] !== undefined);
  if (!v.dropout && dropoutFlags.length > 0) usage(`--${dropoutFlags[0]} needs --dropout`);

  const ort = await loadOrt({ backend: 'wasm', numThreads: num(v.threads, 'threads', true) ?? 1 });
  let engine: TextEngine;
  if (variant) {
    engine = new TextEngine(ort, 'wasm', variant.model, variant.prepared, { attention, compress: variant.info.setting });
    await engine.setPlan(plan);
  } else engine = await TextEngine.create(ort, 'wasm', model as Parameters<typeof TextEngine.create>[2], { plan, attention, ...(compress ? { compress } : {}) });
  const options: GenerateOptions = {
    maxTokens: num(v['max-tokens'], 'max-tokens', true) ?? 128,
    greedy: v.greedy,
    temperature: num(v.temperature, 'temperature'),
    topK: num(v['top-k'], 'top-k', true),
    topP: num(v['top-p'], 'top-p'),
    repetitionPenalty: num(v['repetition-penalty'], 'repetition-penalty'),
    seed: num(v.seed, 'seed', true),
    exit: exit !== undefined && !v.speculate,
  };
  if (v.speculate) options.speculate = { exit: exit ?? 'auto', draft: v.draft === undefined || v.draft === 'auto' ? 'auto' : num(v.draft, 'draft', true) };
  if (v.dropout) options.dropout = dropoutOptions(v);
  const ac = new AbortController();
  process.once('SIGINT', () => ac.abort());
  options.signal = ac.signal;
  for await (const ev of engine.generate(v.prompt, options)) {
    if (ev.type === 'token') {
      if (!v.json) process.stdout.write(ev.text);
    } else if (v.json) {
      console.log(JSON.stringify({ tokens: ev.tokens, text: ev.text, stats: { ...ev.stats, nodeCounts: engine.nodeCounts } }));
    } else {
      const s = ev.stats;
      process.stdout.write(`${ev.tail}\n`); // text held back to the end (TextEvent)
      const dr = s.dropout;
      if (dr) {
        console.error(
          `[dropout: ${dr.members} members, ${dr.context.positions.length} context tokens (epistemic ${dr.uncertainty.epistemic.min.toFixed(2)}..${dr.uncertainty.epistemic.max.toFixed(2)} nats), ` +
            `members ran on ${dr.ensembleSteps}/${dr.steps} steps, drops per member ${dr.dropsPerMember.join('/')}, vote changed ${dr.changedByVote} tokens]`,
        );
      }
      const sp = s.speculation;
      if (sp) {
        console.error(
          `[speculation: exit ${sp.exit}, draft ${sp.draft} (mean ${sp.meanDraft.toFixed(2)}), ${sp.accepted}/${sp.drafted} drafts accepted (${(sp.acceptance * 100).toFixed(0)}%), ` +
            `${sp.tokensPerRound.toFixed(2)} tokens/round${sp.calibration ? `, exit chosen by calibration (expected ${sp.calibration.predictedSpeedup.toFixed(2)}x)` : ''}]`,
        );
      }
      console.error(
        `[${s.promptTokens} prompt + ${s.generatedTokens} generated tokens, stop: ${s.stopReason}; prefill ${s.prefillTokensPerSecond.toFixed(0)} tok/s, ` +
          `decode ${s.decodeTokensPerSecond.toFixed(1)} tok/s, first token ${s.timeToFirstTokenMs.toFixed(1)} ms; plan ${JSON.stringify(s.plan)}, ${s.attention} attention]`,
      );
    }
  }
  await engine.dispose();
}

/** `--context prompt|S:E,S:E --members N --rates a,b,c --dropout-top-k K --dropout-seed S` -> DropoutOptions (checked by the engine). */
function dropoutOptions(v: { context?: string; members?: string; rates?: string; 'dropout-top-k'?: string; 'dropout-seed'?: string }): DropoutOptions {
  const context: DropoutOptions['context'] =
    v.context === undefined || v.context === 'prompt'
      ? 'prompt'
      : v.context.split(',').map((range) => {
          const [s, e, ...rest] = range.split(':');
          if (rest.length > 0 || e === undefined) usage(`--context takes 'prompt' or ranges S:E (token indices, end exclusive), got '${range}'`);
          return [num(s, 'context', true)!, num(e, 'context', true)!] as [number, number];
        });
  const options: DropoutOptions = { context };
  const members = num(v.members, 'members', true);
  if (members !== undefined) options.members = members;
  if (v.rates !== undefined) options.rates = v.rates.split(',').map((r) => num(r.trim(), 'rates')!);
  const topK = num(v['dropout-top-k'], 'dropout-top-k', true);
  if (topK !== undefined) options.topK = topK;
  const seed = num(v['dropout-seed'], 'dropout-seed', true);
  if (seed !== undefined) options.seed = seed;
  return options;
}

function parseLayers(value: string): number[] {
  return value.split(',').filter((s) => s.trim() !== '').map((s) => num(s.trim(), 'layers', true)!);
}

/** `--integrity none|sha256`: what a URL folder without published sha256s needs. */
function integrityOf(value: string | undefined): { integrity?: 'sha256' | 'none' } {
  if (value === undefined) return {};
  if (value !== 'none' && value !== 'sha256') usage(`--integrity must be none or sha256, got '${value}'`);
  return { integrity: value };
}

async function exportModel(args: string[]): Promise<void> {
  const { values: v } = parseArgs({ args, strict: true, options: { model: { type: 'string' }, integrity: { type: 'string' }, out: { type: 'string' }, layers: { type: 'string' } } });
  if (!v.model || !v.out) usage('export needs --model and --out');
  const model = await loadModelArg(v.model, integrityOf(v.integrity));
  const plan: LlamaPlan = v.layers !== undefined ? { layers: parseLayers(v.layers) } : fullPlan(model.config);
  const files = exportForTransformersJs(model.config, model.weights, model.tokenizer.json, plan);
  const out = resolve(process.cwd(), v.out);
  for (const [name, bytes] of Object.entries(files)) {
    mkdirSync(dirname(join(out, name)), { recursive: true });
    writeFileSync(join(out, name), bytes);
  }
  console.error(`wrote ${Object.keys(files).join(', ')} to ${out}`);
}

/** `--sparsity 2:4 | unstructured | unstructured:0.6` and `--sparsity-method` -> the setting's sparsity. */
function sparsityArg(arg: string | undefined, method: string | undefined): SparsitySetting | undefined {
  if (arg === undefined) {
    if (method !== undefined) usage('--sparsity-method needs --sparsity');
    return undefined;
  }
  const [pattern, ratio] = arg.split(':') as [string, string | undefined];
  if (arg === '2:4') return { pattern: '2:4', ...(method ? { method: method as SparsitySetting['method'] } : {}) };
  if (pattern !== 'unstructured') usage(`--sparsity must be 2:4 or unstructured[:RATIO], not ${arg}`);
  const r = ratio === undefined ? undefined : Number(ratio);
  if (r !== undefined && !(r > 0 && r < 1)) usage(`--sparsity unstructured:RATIO needs a ratio in (0, 1), not ${ratio}`);
  return { pattern: 'unstructured', ...(r !== undefined ? { ratio: r } : {}), ...(method ? { method: method as SparsitySetting['method'] } : {}) };
}

async function compressCommand(args: string[]): Promise<void> {
  const { values: v, positionals } = parseArgs({
    args,
    strict: true,
    allowPositionals: true,
    options: {
      weights: { type: 'string' },
      group: { type: 'string' },
      head: { type: 'string' },
      out: { type: 'string' },
      integrity: { type: 'string' },
      sparsity: { type: 'string' },
      'sparsity-method': { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  });
  if (positionals.length !== 1) usage('compress takes one model (registry id, folder or http(s) folder URL)');
  const sparsity = sparsityArg(v.sparsity, v['sparsity-method']);
  if (v.weights !== 'q8' && v.weights !== 'q4' && !(v.weights === 'f32' && sparsity)) usage('compress needs --weights q8 or q4 (or f32 with --sparsity)');
  if (!v.out) usage('compress needs --out DIR');
  const group = num(v.group, 'group', true);
  if (group !== undefined && group !== 32 && group !== 64 && group !== 128) usage('--group must be 32, 64 or 128');
  if (v.head !== undefined && v.head !== 'f32' && v.head !== 'q8') usage('--head must be f32 or q8');
  const setting: WeightsSetting = { linear: v.weights, ...(group ? { group } : {}), ...(v.head ? { head: v.head } : {}), ...(sparsity ? { sparsity } : {}) };
  const result = await compressToFolder(positionals[0]!, { setting, out: v.out, ...integrityOf(v.integrity), log: (l) => console.error(l) });
  if (v.json) console.log(JSON.stringify(result));
  else console.error(`wrote ${result.tag} variant to ${result.dir}: ${result.files.map((f) => `${f.name} (${f.size} B)`).join(', ')}`);
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    if (command === 'models') {
      const { values } = parseArgs({ args: rest, strict: true, options: { json: { type: 'boolean', default: false } } });
      models(values.json);
    } else if (command === 'generate') {
      await generate(rest);
    } else if (command === 'export') {
      await exportModel(rest);
    } else if (command === 'compress') {
      await compressCommand(rest);
    } else if (command === 'manifest') {
      const { values, positionals } = parseArgs({ args: rest, strict: true, allowPositionals: true, options: { revision: { type: 'string' }, license: { type: 'string' } } });
      if (positionals.length !== 1) usage('manifest takes one folder');
      const written = await writeFolderManifest(positionals[0]!, { ...(values.revision ? { revision: values.revision } : {}), ...(values.license ? { license: values.license } : {}) });
      console.error(`wrote ${join(positionals[0]!, 'whittle.json')}: ${written.files.length} files`);
    } else if (command === 'codec') {
      return await runCodecCommand(rest);
    } else if (command === 'conformance') {
      await conformanceCommand(rest);
    } else if (command === undefined || command === 'help' || command === '--help') {
      console.log(USAGE);
    } else {
      usage(`unknown command '${command}'`);
    }
    return 0;
  } catch (err) {
    // parseArgs throws TypeError with code ERR_PARSE_ARGS_*: that is a usage error too
    const e = (err as { code?: unknown }).code?.toString().startsWith('ERR_PARSE_ARGS') ? new WhittleError('INVALID_ARGUMENT', `${(err as Error).message}\n${USAGE}`) : asWhittleError(err);
    console.error(`whittle: ${e.code}: ${e.message}`);
    return e.code === 'INVALID_ARGUMENT' ? 2 : 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
