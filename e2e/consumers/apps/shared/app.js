// A user's app, a few lines over Whittle's public API only. The consumer tests copy this file
// into a fresh Vite app and a fresh webpack 5 app, build each for production and drive it.
import { Whittle, WhittleError } from 'whittle';

const params = new URLSearchParams(location.search);
const log = (line) => (document.querySelector('#log').textContent += `${line}\n`);

async function main() {
  const backend = params.get('backend') ?? 'auto';
  const w = await Whittle.create({ backend, manifestsUrl: '/models/manifests.json' });
  log(`backend: ${w.choice.backend} (${w.choice.reason})`);

  // stories260K from its URL on this origin, verified against the sha256 the app pins.
  const lm = await w.text({
    url: '/models/stories260K/',
    files: ['stories260K.bin', 'tok512.bin'],
    sha256: {
      'stories260K.bin': 'b0a507e7ad0f626624f17112325e66691f9076d622e1d3274d103d00299f2696',
      'tok512.bin': '037cb335abb25d1fa9e8ecae30ed2a3a8ace9302862ebcdc05d51a6bbb10c312',
    },
  });
  const tokens = [];
  let text = '';
  for await (const ev of lm.generate([1], { maxTokens: 20, temperature: 0 })) {
    if (ev.type !== 'token') continue;
    tokens.push(ev.token);
    text += ev.text;
    document.querySelector('#out').textContent = text;
  }
  const runtime = lm.info.runtime;
  lm.dispose();

  // A codec round trip at 6 kbps: WAV -> packets -> speech.
  const codec = await w.codec('lyra-v2');
  const wav = await (await fetch('/models/sample1_16kHz.wav')).arrayBuffer();
  const packets = await codec.encodeWav(wav, { kbps: 6 });
  const speech = await codec.decode(packets);
  codec.dispose();

  return { tokens, text, runtime, crossOriginIsolated, choice: w.choice, codec: { packetBytes: packets.length, samples: speech.length, finite: speech.every(Number.isFinite) } };
}

main().then(
  (result) => {
    window.whittleResult = result;
    log('done');
  },
  (err) => {
    window.whittleResult = { error: err instanceof WhittleError ? `${err.code}: ${err.message}` : String(err) };
    log(`error: ${window.whittleResult.error}`);
  },
);
