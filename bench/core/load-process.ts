/**
 * autocannon in a process of its own, for benches that time something else from their own
 * event loop (the isolation probe): sending 2.9 MB bodies in the same process would hold the
 * prober's event loop and count the load generator's delays as the server's.
 *
 *   node --import tsx bench/core/load-process.ts '<json: {url, bodyFile, headers, connections, duration}>'
 *
 * Prints autocannon's summary (req/s, p50, p99, errors) as one JSON line.
 */
import { readFileSync } from 'node:fs';
import autocannon from 'autocannon';

const o = JSON.parse(process.argv[2]!) as { url: string; bodyFile: string; headers: Record<string, string>; connections: number; duration: number };
const r = await autocannon({ url: o.url, method: 'POST', body: readFileSync(o.bodyFile), headers: o.headers, connections: o.connections, duration: o.duration });
process.stdout.write(`${JSON.stringify({ rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, errors: r.errors + r.non2xx })}\n`);
