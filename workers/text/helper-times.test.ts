import { describe, expect, it } from 'vitest';
import { HelperTimes } from './helper-times.ts';

describe('HelperTimes', () => {
  it('tries both modes, then keeps the faster and probes the other every 16 steps', () => {
    const t = new HelperTimes();
    const used: string[] = [];
    const cost = { on: 18, off: 22 };
    for (let i = 0; i < 48; i++) {
      const mode = t.choose();
      used.push(mode);
      t.record(mode, cost[mode]);
    }
    expect(used.slice(0, 2)).toEqual(['on', 'off']);
    expect(used.filter((m) => m === 'off')).toHaveLength(1 + 3); // the first try, then one probe per 16 steps
  });

  it('turns the helper off when its steps become slow, and back on when they recover', () => {
    const t = new HelperTimes();
    const cost = { on: 18, off: 22 };
    const run = (n: number) => {
      const used: string[] = [];
      for (let i = 0; i < n; i++) {
        const mode = t.choose();
        used.push(mode);
        t.record(mode, cost[mode]);
      }
      return used;
    };
    run(8);
    cost.on = 80; // a busy machine: the helper's half arrives late
    const busy = run(64);
    expect(busy.slice(-32).filter((m) => m === 'on').length).toBeLessThanOrEqual(2);
    cost.on = 18;
    const quiet = run(64);
    expect(quiet.slice(-32).filter((m) => m === 'on').length).toBeGreaterThanOrEqual(30);
  });

  it('ignores steps taken while onnxruntime threads were still spinning', () => {
    const t = new HelperTimes();
    t.choose();
    t.record('near-graph-run', 1000);
    expect(t.choose()).toBe('on'); // nothing recorded for 'on' yet
  });
});
