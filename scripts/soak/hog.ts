/**
 * A page that keeps the CPU busy while the live codec streams in another tab (scripts/soak): its
 * main thread spins in 50 ms slices (so the page still answers) and `?threads=N` workers spin
 * without pause. What a heavy site in the next tab does to a real-time pipeline.
 */
const threads = Number(new URLSearchParams(location.search).get('threads') ?? '1');

let sink = 0;
function spinSlice(): void {
  const end = performance.now() + 50;
  while (performance.now() < end) sink += Math.sqrt(sink + 1);
  setTimeout(spinSlice, 0);
}
spinSlice();

const source = 'let s = 0; for (;;) s += Math.sqrt(s + 1);';
const url = URL.createObjectURL(new Blob([source], { type: 'text/javascript' }));
for (let i = 0; i < threads; i++) new Worker(url);
document.getElementById('status')!.textContent = `spinning (main thread + ${threads} workers)`;
