/**
 * Built-in calibration text for on-device depth pruning (`TextService.prune`): a few hundred
 * tokens of TinyStories-style prose, written for Whittle (not taken from the TinyStories data
 * set), so the block scores see the simple vocabulary and story shape the small story models were
 * trained on. Pass your own text for models of other domains.
 */
export const DEFAULT_CALIBRATION_TEXT = [
  'Once upon a time, there was a little girl named Lily. She lived in a small house with her mom, her dad and a fluffy cat named Tom.',
  'Every morning, Lily went to the park to play. She liked to run on the grass, swing on the swings and look at the big trees.',
  'One day, Lily saw a bird sitting on a branch. The bird was sad because it could not find its nest. "Do not worry, little bird," said Lily. "I will help you."',
  'Lily looked under the bushes and behind the bench. Then she saw a nest near the pond. She carried it to the tree very slowly, so the eggs would not fall.',
  'The bird was so happy. It sang a pretty song and flew around Lily\'s head. Lily smiled and clapped her hands.',
  'When she got home, she told her mom about the bird. Her mom gave her a big hug and said, "You were very kind today. I am proud of you."',
  'The next day, Ben came to play. Ben was Lily\'s best friend. He had a red ball and a blue truck. They played with the ball in the garden until it was time for lunch.',
  'After lunch, it started to rain. Ben was sad because he wanted to play outside. Lily had an idea. "Let\'s build a fort with blankets!" she said.',
  'They took all the pillows from the couch and made a big fort in the living room. Tom the cat came in too. They laughed and shared a cookie.',
  'When the rain stopped, they saw a rainbow in the sky. It was red, orange, yellow, green and blue. Lily and Ben ran outside to look at it.',
  'They learned that even a rainy day can be fun when you have a good friend. From that day on, they played together every day, and they were very happy.',
].join(' ');
