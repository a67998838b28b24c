/**
 * A second inferd process serving a repository, on a port that stays the same across a kill
 * and a restart (an upstream outage and its recovery, as a remote model sees them).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { REPO_ROOT } from './paths.js';
import { freePort } from './ports.js';

export interface Upstream {
  url: string;
  port: number;
  /** Its gRPC address, `grpc://127.0.0.1:port`. */
  grpcUrl: string;
  /** SIGKILL: an outage, not a drain. */
  kill(): Promise<void>;
  /** Starts it again on the same port and waits for readiness. */
  start(): Promise<void>;
  output(): string;
}

export async function startUpstream(repository: string): Promise<Upstream> {
  const port = await freePort();
  const grpcPort = await freePort();
  const url = `http://127.0.0.1:${port}`;
  let child: ChildProcess | undefined;
  let out = '';
  const start = async (): Promise<void> => {
    const proc = spawn(process.execPath, [join(REPO_ROOT, 'bin', 'inferd.js'), 'serve', '--host', '127.0.0.1', '--port', String(port), '--grpc-port', String(grpcPort), '--model-repository', repository, '--log-level', 'warn'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = proc;
    proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const started = Date.now();
    for (;;) {
      if (proc.exitCode !== null) throw new Error(`upstream inferd exited with ${proc.exitCode}:\n${out}`);
      const ok = await fetch(`${url}/health/ready`).then((r) => r.status === 200, () => false);
      if (ok) return;
      if (Date.now() - started > 60_000) throw new Error(`upstream inferd not ready in 60 s:\n${out}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const kill = async (): Promise<void> => {
    const proc = child;
    child = undefined;
    if (!proc || proc.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      proc.once('exit', () => resolve());
      proc.kill('SIGKILL');
    });
  };
  await start();
  return { url, port, grpcUrl: `grpc://127.0.0.1:${grpcPort}`, kill, start, output: () => out };
}
