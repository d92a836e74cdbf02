/**
 * A small SVG line chart: one polyline per series over shared axes, a legend, and each point
 * carrying its values (data-x, data-y) so a reader's tools and the e2e test read what is drawn.
 */
import { svg } from './dom.ts';

export interface Series {
  name: string;
  /** A CSS colour for the line and its points. */
  colour: string;
  points: { x: number; y: number }[];
}

export interface Axes {
  x: { label: string; format: (v: number) => string };
  y: { label: string; format: (v: number) => string };
}

const WIDTH = 600;
const HEIGHT = 250;
const MARGIN = { left: 56, right: 120, top: 12, bottom: 40 };

/** "Nice" tick values covering [lo, hi]: steps of 1, 2 or 5 times a power of ten, about `count` of them. */
function ticks(lo: number, hi: number, count: number): number[] {
  const span = hi - lo || Math.abs(hi) || 1;
  const raw = span / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw)!;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

export function plotLines(target: SVGSVGElement, series: readonly Series[], axes: Axes): void {
  const all = series.flatMap((s) => s.points);
  const xs = all.map((p) => p.x);
  const ys = all.map((p) => p.y).filter(Number.isFinite);
  const xMax = Math.max(...xs, 1e-9);
  // Perplexity starts well above 0: the y axis spans the data (with a margin), not 0..max.
  const yLo = ys.length ? Math.min(...ys) : 0;
  const yHi = ys.length ? Math.max(...ys) : 1;
  const pad = (yHi - yLo || yHi || 1) * 0.08;
  const yMin = yLo - pad;
  const yMax = yHi + pad;
  const plotW = WIDTH - MARGIN.left - MARGIN.right;
  const plotH = HEIGHT - MARGIN.top - MARGIN.bottom;
  const px = (x: number) => MARGIN.left + (x / xMax) * plotW;
  const py = (y: number) => MARGIN.top + plotH - ((y - yMin) / (yMax - yMin)) * plotH;

  const grid = ticks(yMin, yMax, 4)
    .filter((t) => t >= yMin && t <= yMax)
    .flatMap((t) => [svg('line', { x1: MARGIN.left, x2: MARGIN.left + plotW, y1: py(t), y2: py(t), class: 'grid' }), svg('text', { x: MARGIN.left - 6, y: py(t) + 4, 'text-anchor': 'end' }, axes.y.format(t))]);
  const xTicks = [...new Set(xs)].sort((a, b) => a - b).flatMap((t) => [svg('line', { x1: px(t), x2: px(t), y1: MARGIN.top + plotH, y2: MARGIN.top + plotH + 4, class: 'axis' }), svg('text', { x: px(t), y: MARGIN.top + plotH + 16, 'text-anchor': 'middle' }, axes.x.format(t))]);
  const frame = [
    svg('line', { x1: MARGIN.left, x2: MARGIN.left + plotW, y1: MARGIN.top + plotH, y2: MARGIN.top + plotH, class: 'axis' }),
    svg('line', { x1: MARGIN.left, x2: MARGIN.left, y1: MARGIN.top, y2: MARGIN.top + plotH, class: 'axis' }),
    svg('text', { x: MARGIN.left + plotW / 2, y: HEIGHT - 4, 'text-anchor': 'middle', class: 'label' }, axes.x.label),
    svg('text', { x: 12, y: MARGIN.top + plotH / 2, 'text-anchor': 'middle', class: 'label', transform: `rotate(-90 12 ${MARGIN.top + plotH / 2})` }, axes.y.label),
  ];
  const lines = series.map((s, i) => {
    const group = svg('g', { class: 'series', 'data-series': s.name });
    const finite = s.points.filter((p) => Number.isFinite(p.y));
    group.append(svg('polyline', { points: finite.map((p) => `${px(p.x)},${py(p.y)}`).join(' '), fill: 'none', stroke: s.colour, 'stroke-width': 2 }));
    for (const p of finite) {
      const dot = svg('circle', { cx: px(p.x), cy: py(p.y), r: 3.5, fill: s.colour, 'data-x': p.x, 'data-y': p.y });
      dot.append(svg('title', {}, `${s.name}: ${axes.x.format(p.x)} removed, ${axes.y.label.toLowerCase()} ${axes.y.format(p.y)}`));
      group.append(dot);
    }
    const ly = MARGIN.top + 10 + i * 18;
    const lx = MARGIN.left + plotW + 14;
    group.append(svg('line', { x1: lx, x2: lx + 18, y1: ly, y2: ly, stroke: s.colour, 'stroke-width': 2 }), svg('text', { x: lx + 24, y: ly + 4 }, s.name));
    return group;
  });
  target.setAttribute('viewBox', `0 0 ${WIDTH} ${HEIGHT}`);
  target.replaceChildren(...grid, ...xTicks, ...frame, ...lines);
}
