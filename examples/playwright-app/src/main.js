// A user's Whittle app: writes the start of a story with stories260K, loaded by URL from this
// origin and pinned by sha256. `?backend=webgpu|wasm` picks the backend (the e2e tests pass the
// one each Playwright project targets). It leaves its result on `window.storyResult` for tests.
import { Whittle, WhittleError } from 'whittle';

const backend = new URLSearchParams(location.search).get('backend') ?? 'auto';
const log = (line) => (document.querySelector('#log').textContent += `${line}\n`);

async function writeStory() {
  const w = await Whittle.create({ backend });
  log(`backend: ${w.choice.backend} (${w.choice.reason})`);
  const lm = await w.text({
    url: '/models/stories260K/',
    files: ['stories260K.bin', 'tok512.bin'],
    sha256: {
      'stories260K.bin': 'b0a507e7ad0f626624f17112325e66691f9076d622e1d3274d103d00299f2696',
      'tok512.bin': '037cb335abb25d1fa9e8ecae30ed2a3a8ace9302862ebcdc05d51a6bbb10c312',
    },
  });
  let done;
  for await (const ev of lm.generate([1], { maxTokens: 20, temperature: 0 })) {
    if (ev.type === 'token') document.querySelector('#out').textContent += ev.text;
    else done = ev;
  }
  const result = {
    tokens: done.tokens,
    text: done.text,
    stats: done.stats,
    source: lm.source,
    runtime: lm.info.runtime,
    crossOriginIsolated,
  };
  lm.dispose();
  return result;
}

writeStory().then(
  (result) => {
    window.storyResult = result;
    log('done');
  },
  (err) => {
    window.storyResult = { error: err instanceof WhittleError ? `${err.code}: ${err.message}` : String(err) };
    log(`error: ${window.storyResult.error}`);
  },
);
