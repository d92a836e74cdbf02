/** Canvas drawing for the codec demo: overlaid waveforms and a log-magnitude spectrogram. */

export function drawWaves(canvas: HTMLCanvasElement, original: Float32Array | null, decoded: Float32Array): void {
  const g = canvas.getContext('2d')!;
  const { width, height } = canvas;
  g.fillStyle = '#111827';
  g.fillRect(0, 0, width, height);
  const n = Math.max(original?.length ?? 0, decoded.length);
  const trace = (x: Float32Array, color: string) => {
    g.strokeStyle = color;
    g.beginPath();
    for (let px = 0; px < width; px++) {
      const from = Math.floor((px / width) * n);
      const to = Math.floor(((px + 1) / width) * n);
      let lo = 0;
      let hi = 0;
      for (let i = from; i < to && i < x.length; i++) {
        lo = Math.min(lo, x[i]!);
        hi = Math.max(hi, x[i]!);
      }
      g.moveTo(px + 0.5, height / 2 - hi * (height / 2));
      g.lineTo(px + 0.5, height / 2 - lo * (height / 2));
    }
    g.stroke();
  };
  if (original) trace(original, '#60a5fa88');
  trace(decoded, '#f59e0bcc');
  g.fillStyle = '#e5e7eb';
  g.fillText('blue: input · orange: decoded', 8, 14);
}

export function drawSpectrogram(canvas: HTMLCanvasElement, x: Float32Array): void {
  const g = canvas.getContext('2d')!;
  const { width, height } = canvas;
  const size = 256;
  const cols = Math.max(1, Math.floor((x.length - size) / 160));
  const image = g.createImageData(width, height);
  for (let px = 0; px < width; px++) {
    const start = Math.floor((px / width) * cols) * 160;
    // Direct DFT of 128 bins for one column: fine for a 900-column picture drawn once.
    for (let py = 0; py < height; py++) {
      const k = Math.floor(((height - 1 - py) / height) * (size / 2));
      let re = 0;
      let im = 0;
      for (let i = 0; i < size; i++) {
        const w = 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / size);
        const v = (x[start + i] ?? 0) * w;
        re += v * Math.cos((2 * Math.PI * k * i) / size);
        im -= v * Math.sin((2 * Math.PI * k * i) / size);
      }
      const db = 10 * Math.log10(re * re + im * im + 1e-10);
      const t = Math.min(1, Math.max(0, (db + 60) / 70));
      const o = (py * width + px) * 4;
      image.data[o] = 255 * t;
      image.data[o + 1] = 160 * t * t;
      image.data[o + 2] = 80 + 100 * (1 - t);
      image.data[o + 3] = 255;
    }
  }
  g.putImageData(image, 0, 0);
}
