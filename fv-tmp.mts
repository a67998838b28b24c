import { fromValues as fNew } from './src/core/tensor.js';
const { fromValues: fOld } = await import('/tmp/inferd-baseline/src/core/tensor.ts');
const vals = Array.from({ length: 150528 }, () => Math.random() * 2 - 1);
const small = vals.slice(0, 30);
const t = (f: () => void, n = 40) => { const s = performance.now(); for (let i = 0; i < n; i++) f(); return (performance.now() - s) / n * 1000; };
const a: number[] = [], b: number[] = [], c: number[] = [], d: number[] = [];
for (let r = 0; r < 15; r++) { a.push(t(() => fOld('FP32', vals, 'x'))); b.push(t(() => fNew('FP32', vals, 'x', { fromText: true })));
  c.push(t(() => fOld('FP32', small, 'x'), 20000)); d.push(t(() => fNew('FP32', small, 'x', { fromText: true }), 20000)); }
const med = (x: number[]) => x.sort((p, q) => p - q)[7]!.toFixed(3);
console.log('fromValues 150k FP32 µs old', med(a), 'new', med(b), '| 30 FP32 old', med(c), 'new', med(d));
