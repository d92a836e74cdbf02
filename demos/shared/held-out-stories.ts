/**
 * Held-out TinyStories-style paragraphs, not in the built-in calibration text
 * (workers/text/calibration.ts) that pruning scores blocks and channels on. The depth-pruning benchmark
 * page (bench/pages/prune.ts) measures its held-out perplexity on them, and the playground's
 * width sweep does too, so the two report the same quantity.
 */
export const HELD_OUT_STORIES: readonly string[] = [
  'Ben had a little red car. He liked to push it across the floor and make it go fast. One day the car rolled under the bed. Ben looked and looked, but it was dark. His sister came with a lamp, and they found the car next to an old sock. Ben laughed and gave his sister a big hug.',
  'Mia and her dad went to the lake. The water was cold and blue. They saw a duck with three baby ducks. The babies swam in a line behind their mom. Mia threw some bread, and the ducks ate it all. "Thank you," said Mia\'s dad, "for being so kind to them."',
];
