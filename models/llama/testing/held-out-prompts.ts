/**
 * Story openings for speculation tests and benchmarks: TinyStories-style, and in neither the
 * LayerSkip recipe's training stories (sampled by stories260K) by construction nor the built-in
 * calibration text (workers/text/calibration.ts), so calibrated exits are not judged on what
 * they were calibrated on.
 */
export const HELD_OUT_PROMPTS = [
  'Once upon a time',
  'Tom had a red ball.',
  'One day, a little bird',
  'The sun was hot and',
  'Sam and Mia went to the beach.',
  'There was a big dog named Spot. He',
  'Mom said, "Come here!"',
  'The cat saw a mouse',
  'Lucy wanted to bake a cake',
  'In the forest, there lived a bear who',
  'Ben was sad because',
  'The little boat',
];
