// Loaded into an inferd server with `node --import` by allocations.ts. SIGUSR2 starts V8's
// sampling heap profiler (objects collected by scavenges and mark-compacts included) and
// counts garbage collections; the next SIGUSR2 stops both and writes them to the file named
// by ALLOC_PROBE_OUT. Plain JavaScript: the server runs the built code without tsx.
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { constants, PerformanceObserver } from 'node:perf_hooks';

const out = process.env.ALLOC_PROBE_OUT;
const interval = Number(process.env.ALLOC_PROBE_INTERVAL ?? '1024');
const session = new Session();
session.connect();
const post = (method, params = {}) => new Promise((resolve, reject) => session.post(method, params, (error, result) => (error ? reject(error) : resolve(result))));
let gc = undefined;
const observer = new PerformanceObserver((list) => {
  if (gc === undefined) return;
  for (const entry of list.getEntries()) {
    const kind = entry.detail?.kind;
    const name = kind === constants.NODE_PERFORMANCE_GC_MINOR ? 'minor' : kind === constants.NODE_PERFORMANCE_GC_MAJOR ? 'major' : kind === constants.NODE_PERFORMANCE_GC_INCREMENTAL ? 'incremental' : 'other';
    gc[name].count += 1;
    gc[name].ms += entry.duration;
  }
});
observer.observe({ entryTypes: ['gc'] });
let started = false;
process.on('SIGUSR2', () => {
  void (async () => {
    if (!started) {
      started = true;
      await post('HeapProfiler.enable');
      await post('HeapProfiler.startSampling', { samplingInterval: interval, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
      gc = { minor: { count: 0, ms: 0 }, major: { count: 0, ms: 0 }, incremental: { count: 0, ms: 0 }, other: { count: 0, ms: 0 } };
      return;
    }
    const { profile } = await post('HeapProfiler.stopSampling');
    const counted = gc;
    gc = undefined;
    started = false;
    writeFileSync(out, JSON.stringify({ gc: counted, profile }));
  })();
});
