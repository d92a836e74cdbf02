/**
 * core/text-types.ts spells out the plan and attention shapes that models/llama names (core
 * imports no other layer): this fails to type-check (tsc, which covers test files) if they drift.
 */
import { expectTypeOf, it } from 'vitest';
import type { GenerateStats } from '../../core/text-types.ts';
import type { AttentionKind } from '../../models/llama/graph.ts';
import type { LlamaPlan } from '../../models/llama/types.ts';

it("GenerateStats' plan and attention are models/llama's LlamaPlan and AttentionKind", () => {
  expectTypeOf<GenerateStats['plan']>().toEqualTypeOf<LlamaPlan>();
  expectTypeOf<GenerateStats['attention']>().toEqualTypeOf<AttentionKind>();
});
