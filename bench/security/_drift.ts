import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { processCpuMicros, startServer } from '../support/ab.js';
import { securityBench } from './fixture.js';
const root = resolve(import.meta.dirname, '..', '..');
const bench = await securityBench('inferd-drift');
for (const which of (process.argv[2] ?? 'secure,off').split(',')) {
  const config = which === 'off' ? undefined : (bench.configs as Record<string, string>)[which];
  const headers: Record<string, string> = which === 'off' ? {} : { 'x-api-key': bench.key };
  const s = await startServer({ checkout: root, repository: resolve(root, 'examples', 'models'), ...(config ? { config } : {}) });
  const pid = s.child.pid!;
  const st = async () => (await (await fetch(`http://127.0.0.1:${s.http}/v2/models/breast_cancer/stats`, { headers })).json()).model_stats[0].inference_stats.success.count as number;
  const args = [resolve(root, 'bin', 'inferd.js'), 'bench', '-m', 'breast_cancer', '-i', 'http', '-u', `http://127.0.0.1:${s.http}`, '--concurrency-range', '64', '--windows', '1', '--window-ms', '40000', '--warmup-ms', '500', '--no-progress'];
  for (const [k, v] of Object.entries(headers)) args.push('-H', `${k}: ${v}`);
  const load = spawn(process.execPath, args, { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 1000));
  let c0 = processCpuMicros(pid, true)!, r0 = await st();
  const line: string[] = [];
  for (let i = 0; i < 8; i++) {
    await new Promise((r) => setTimeout(r, 4000));
    const c1 = processCpuMicros(pid, true)!, r1 = await st();
    const rss = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1];
    line.push(`${((c1 - c0) / (r1 - r0)).toFixed(1)}µs/${Math.round((r1 - r0) / 4)}rps/${Math.round(Number(rss) / 1024)}MB`);
    c0 = c1; r0 = r1;
  }
  console.log(which.padEnd(7), line.join('  '));
  load.kill('SIGKILL'); s.child.kill('SIGTERM'); await new Promise((r) => s.child.once('exit', r));
}
bench.stop();
