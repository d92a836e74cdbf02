/** The main demo, driven like a person would: see the device, write a story, prune, stop. */
import { test, expect } from './fixtures.ts';

test('playground: generate a story in a worker, prune a block, stop mid-stream', async ({ page, whittleBackend }) => {
  test.setTimeout(240_000);
  // SwiftShader emulates the GPU on the CPU: a short story on WebGPU.
  const tokens = whittleBackend.backend === 'webgpu' ? 8 : 20;
  await page.goto('/');
  await expect(page).toHaveURL(/\/demos\/playground\/$/);
  await expect(page.locator('#choice')).toContainText('Using'); // initial probe done
  await page.selectOption('#backend', whittleBackend.backend);
  await expect(page.locator('#choice')).toContainText(`Using ${whittleBackend.backend}`);
  await expect(page.locator('#caps')).toContainText('cross-origin isolated');
  await page.selectOption('#model', 'stories260K');
  await page.fill('#max-tokens', String(tokens));
  await page.fill('#prompt', 'Once upon a time');
  await page.click('#generate');
  await expect(page.locator('#story-stats')).toContainText(`${tokens} tokens`, { timeout: 180_000 });
  await expect(page.locator('#story-stats')).toContainText(whittleBackend.backend);
  const story = await page.locator('#story-out').textContent();
  expect(story!.length).toBeGreaterThan('Once upon a time'.length + tokens);
  await expect(page.locator('#model-rows')).toContainText('cached ✓');
  await page.screenshot({ path: `test-results/playground-${whittleBackend.backend}.png`, fullPage: true });
  if (whittleBackend.backend !== 'wasm') return; // pruning and stopping: once is enough (WebGPU on SwiftShader is slow)

  // Prune block 2 by hand: the plan shown in the stats follows, with no reload.
  await page.locator('#blocks input[value="2"]').uncheck();
  await page.click('#generate');
  await expect(page.locator('#story-stats')).toContainText('blocks [0,1,3,4]');
  await page.locator('#blocks input[value="2"]').check();

  // Self-speculative decoding on the LayerSkip model: same text as full depth, drafts coloured,
  // the exit profile plotted.
  await page.selectOption('#model', 'stories-layerskip');
  await page.fill('#max-tokens', '40');
  await page.click('#generate');
  await expect(page.locator('#story-stats')).toContainText('40 tokens', { timeout: 60_000 });
  const fullText = await page.locator('#story-out').textContent();
  await page.check('#speculate');
  await expect(page.locator('#exit-value')).toHaveText('auto');
  await page.locator('#exit').fill('2');
  await expect(page.locator('#exit-value')).toHaveText('2');
  await page.click('#generate');
  await expect(page.locator('#story-stats')).toContainText('speculating: exit 2', { timeout: 60_000 });
  await expect(page.locator('#story-stats')).toContainText('drafts accepted');
  expect(await page.locator('#story-out').evaluate((el) => [...el.childNodes].filter((n) => n.nodeName !== 'S').map((n) => n.textContent).join(''))).toBe(fullText);
  expect(await page.locator('#story-out .tok.draft').count()).toBeGreaterThan(0);
  await expect(page.locator('#live-rate')).toContainText('tok/s');
  await expect(page.locator('#scores-title')).toContainText('Agreement');
  await expect(page.locator('#scores-plot rect')).toHaveCount(7);
  await page.screenshot({ path: 'test-results/playground-speculate.png', fullPage: true });
  // Exit 'auto': calibrated in the worker, the label says which exit ran, the slider stays on auto.
  await page.locator('#exit').fill('0');
  await expect(page.locator('#exit-value')).toHaveText('auto');
  await page.click('#generate');
  await expect(page.locator('#story-stats')).toContainText('(calibrated)', { timeout: 60_000 });
  await expect(page.locator('#exit-value')).toHaveText(/^auto → \d$/);
  await expect(page.locator('#exit')).toHaveValue('0');

  // "Prune k blocks": the worker scores the blocks, the checkboxes and the plot follow.
  await page.uncheck('#speculate');
  await page.locator('#exit').fill('0');
  await expect(page.locator('#exit-value')).toHaveText('none');
  await page.fill('#prune-k', '2');
  await page.click('#prune');
  await expect(page.locator('#story-stats')).toContainText('pruned blocks', { timeout: 120_000 });
  await expect(page.locator('#blocks input:checked')).toHaveCount(6);
  await expect(page.locator('#scores-plot rect.removed')).toHaveCount(2);
  await expect(page.locator('#scores-plot rect')).toHaveCount(8);
  await page.click('#generate');
  await expect(page.locator('#story-stats')).toContainText('40 tokens');
  await page.selectOption('#model', 'stories260K');
  // A long generation stopped by the user ends quietly with ABORTED.
  await page.fill('#max-tokens', '400');
  await page.fill('#temperature', '0'); // greedy loops without EOS for 400 tokens: the stop always lands mid-stream
  await page.click('#generate');
  await page.click('#stop');
  await expect(page.locator('#story-stats')).toContainText('ABORTED');
  await expect(page.locator('#generate')).toBeEnabled();
});

/** rgb(r, g, b) -> [r, g, b]. */
const channels = (colour: string) => colour.match(/\d+/g)!.slice(0, 3).map(Number);

test('playground: dropout decoding colours the context by uncertainty, shows each step’s votes and drops, and 0 members is greedy', async ({ page, whittleBackend }) => {
  test.setTimeout(240_000);
  // SwiftShader emulates the GPU on the CPU: fewer tokens on WebGPU.
  const tokens = whittleBackend.backend === 'webgpu' ? 8 : 16;
  await page.goto('/');
  await expect(page.locator('#choice')).toContainText('Using');
  await page.selectOption('#backend', whittleBackend.backend);
  await expect(page.locator('#choice')).toContainText(`Using ${whittleBackend.backend}`);
  await page.selectOption('#model', 'stories-layerskip');
  await page.fill('#dropout-tokens', String(tokens));
  // The bench's two kinds of noise, through the buttons.
  const clean = await page.inputValue('#dropout-context');
  await page.click('#corrupt-tokens');
  await expect(page.locator('#dropout-context')).not.toHaveValue(clean);
  await page.click('#insert-distractor');
  await page.click('#dropout-run');
  await expect(page.locator('#dropout-stats')).toContainText(`${tokens} steps`, { timeout: 180_000 });

  // Every context token is a span carrying the epistemic value the SDK returned, and its colour
  // follows that value: sorted by value, no colour channel ever rises.
  const context = await page.locator('#context-tokens .ctx').evaluateAll((spans) => spans.map((s) => ({ value: (s as HTMLElement).dataset.epistemic, colour: getComputedStyle(s).backgroundColor })));
  expect(context.length).toBeGreaterThan(40);
  // The spans are the context's tokens, whole: their pieces read back as the context text.
  expect((await page.locator('#context-tokens').textContent())!.trimStart()).toBe(await page.inputValue('#dropout-context'));
  expect(context.every((c) => c.value !== undefined)).toBe(true);
  const sorted = context.map((c) => ({ value: Number(c.value), rgb: channels(c.colour) })).sort((a, b) => a.value - b.value);
  for (let i = 1; i < sorted.length; i++) for (let ch = 0; ch < 3; ch++) expect(sorted[i]!.rgb[ch]!).toBeLessThanOrEqual(sorted[i - 1]!.rgb[ch]!);
  expect(sorted.at(-1)!.rgb).not.toEqual(sorted[0]!.rgb);

  // A token the members ran on: its votes (one row per member) and the context tokens they dropped, outlined.
  const ensembleToken = page.locator('#dropout-out .gen.ensemble').first();
  await ensembleToken.click();
  await expect(page.locator('#step-detail')).toContainText('the base pass proposed');
  await expect(page.locator('#step-detail table.votes tr')).toHaveCount(1 + 3);
  expect(await page.locator('#context-tokens .ctx.dropped').count()).toBeGreaterThan(0);
  await expect(page.locator('#dropout-out .gen.current')).toHaveCount(1);
  await page.screenshot({ path: `test-results/playground-dropout-${whittleBackend.backend}.png`, fullPage: true });

  // Exactness guard: with no members it is plain decoding, the greedy answer beside it token for token.
  await page.fill('#dropout-members', '0');
  await expect(page.locator('#dropout-rates')).toHaveValue('');
  await page.click('#dropout-run');
  await expect(page.locator('#dropout-stats')).toContainText('plain decoding (0 members)', { timeout: 120_000 });
  await expect(page.locator('#dropout-stats')).toContainText(`agrees with greedy on ${tokens} of ${tokens} tokens`);
  expect(await page.locator('#dropout-out').textContent()).toBe(await page.locator('#greedy-out').textContent());
});

test('playground: the width sweep plots held-out perplexity against parameters removed, one line per method, and applies a pruning', async ({ page, whittleBackend }) => {
  test.skip(whittleBackend.backend === 'webgpu', 'SwiftShader emulates WebGPU on the CPU: scoring stories-layerskip\'s blocks alone (before the 13 plans of the sweep) ran past 2 minutes there; width pruning in a WebGPU worker is e2e/width.spec.ts');
  test.setTimeout(300_000);
  await page.goto('/');
  await expect(page.locator('#choice')).toContainText('Using');
  await page.selectOption('#backend', whittleBackend.backend);
  await expect(page.locator('#choice')).toContainText(`Using ${whittleBackend.backend}`);
  await page.selectOption('#model', 'stories-layerskip');
  // A plan of the user's own first (one block pruned): the sweep must hand it back.
  await page.fill('#prune-k', '1');
  await page.fill('#max-tokens', '12');
  await page.click('#generate'); // loads the model
  await expect(page.locator('#story-stats')).toContainText('12 tokens', { timeout: 60_000 });
  await page.click('#prune');
  await expect(page.locator('#story-stats')).toContainText('pruned blocks', { timeout: 120_000 });
  await expect(page.locator('#blocks input:checked')).toHaveCount(7);
  await page.click('#sweep');
  await expect(page.locator('#sweep-status')).toContainText('done: 4 fractions × 3 methods', { timeout: 240_000 });
  await expect(page.locator('#sweep')).toBeEnabled();
  const series = await page.locator('#sweep-plot g.series').evaluateAll((groups) =>
    groups.map((g) => ({ name: g.getAttribute('data-series'), points: [...g.querySelectorAll('circle')].map((c) => ({ x: Number(c.getAttribute('data-x')), y: Number(c.getAttribute('data-y')) })) })),
  );
  expect(series.map((s) => s.name)).toEqual(['depth', 'FLAP', 'Wanda-sp']);
  for (const s of series) expect(s.points).toHaveLength(4);
  // 0% is each method pruning nothing: the full model's held-out perplexity, as lm.perplexity gave it before the sweep.
  const full = Number(await page.locator('#sweep-full').getAttribute('data-perplexity'));
  expect(full).toBeGreaterThan(1);
  for (const s of series) {
    expect(s.points[0]!.x).toBe(0);
    expect(s.points[0]!.y).toBeCloseTo(full, 4);
    for (let i = 1; i < 4; i++) expect(s.points[i]!.x).toBeGreaterThan(s.points[i - 1]!.x);
  }
  // The sweep hands the user's plan back: the 7 blocks it had.
  await expect(page.locator('#blocks input:checked')).toHaveCount(7);
  await page.screenshot({ path: 'test-results/playground-width.png', fullPage: true });

  // Apply FLAP at 2 blocks' worth, and the story generates with the narrowed blocks.
  await page.selectOption('#apply-method', 'flap');
  await page.selectOption('#apply-fraction', '2');
  await page.click('#apply-width');
  await expect(page.locator('#apply-status')).toContainText('FLAP: 25', { timeout: 60_000 });
  await page.click('#generate');
  await expect(page.locator('#story-stats')).toContainText('width-pruned', { timeout: 60_000 });
  await expect(page.locator('#story-stats')).toContainText('12 tokens');

  // Stop mid-sweep: it ends with ABORTED and the applied plan is back.
  await page.click('#sweep');
  await expect(page.locator('#sweep-status')).toContainText('FLAP', { timeout: 60_000 });
  await page.click('#sweep-stop');
  await expect(page.locator('#sweep-status')).toContainText('ABORTED', { timeout: 60_000 });
  await expect(page.locator('#sweep')).toBeEnabled();
  await page.click('#generate');
  await expect(page.locator('#story-stats')).toContainText('width-pruned', { timeout: 60_000 });
});
