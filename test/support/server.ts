/** Starts real inferd servers for tests: in-process (fast) or as a child process (signals). */
import { spawn, type ChildProcess } from 'node:child_process';
import { cp, mkdtemp, mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { loadConfig } from '../../src/config/load.js';
import { InferdServer } from '../../src/server/index.js';
import { REPO_ROOT } from './paths.js';
import { freePort } from './ports.js';

export { freePort };

export async function startInProcess(repository: string, overrides: Record<string, unknown> = {}): Promise<{ server: InferdServer; url: string }> {
  const server = overrides.server as Record<string, unknown> | undefined;
  const config = loadConfig({
    env: {},
    overrides: {
      model_repository: repository,
      ...overrides,
      server: { host: '127.0.0.1', http_port: 0, grpc_port: -1, ...server },
      shutdown: { lame_duck_ms: 0, ...(overrides.shutdown as object) },
      logging: { level: 'silent', ...(overrides.logging as object) },
    },
  });
  const instance = await InferdServer.start(config, pino({ level: 'silent' }));
  return { server: instance, url: `http://127.0.0.1:${instance.httpPort}` };
}

export interface ChildServer {
  url: string;
  grpcPort: number;
  process: ChildProcess;
  output(): string;
  exited: Promise<number | null>;
  stop(): Promise<number | null>;
}

/** Runs the compiled CLI (`npm test` builds it first) and waits for readiness. */
export async function startChild(args: string[], env: NodeJS.ProcessEnv = {}): Promise<ChildServer> {
  const port = await freePort();
  const grpcPort = await freePort();
  const child = spawn(process.execPath, [join(REPO_ROOT, 'bin', 'inferd.js'), 'serve', '--host', '127.0.0.1', '--port', String(port), '--grpc-port', String(grpcPort), ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const url = `http://127.0.0.1:${port}`;
  const started = Date.now();
  for (;;) {
    if (child.exitCode !== null) throw new Error(`inferd exited with ${child.exitCode} before it was ready:\n${out}`);
    try {
      const r = await fetch(`${url}/health/ready`);
      if (r.status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() - started > 60_000) {
      child.kill('SIGKILL');
      throw new Error(`inferd did not become ready in 60 s:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    grpcPort,
    process: child,
    output: () => out,
    exited,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}

/** A temporary model repository: copies of shared models and inline configs or JS models. */
export async function makeRepository(models: Record<string, { config?: string; files?: Record<string, string>; copyFrom?: string }>): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'inferd-repo-'));
  for (const [name, spec] of Object.entries(models)) {
    const dir = join(root, name);
    await mkdir(join(dir, '1'), { recursive: true });
    if (spec.copyFrom) await cp(spec.copyFrom, dir, { recursive: true });
    if (spec.config !== undefined) await writeFile(join(dir, 'config.yaml'), spec.config);
    for (const [file, text] of Object.entries(spec.files ?? {})) {
      await mkdir(join(dir, file, '..'), { recursive: true });
      await writeFile(join(dir, file), text);
    }
  }
  return root;
}

export async function postJson(url: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: any; headers: Headers }> {
  return readAnswer(await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) }));
}

export async function getJson(url: string): Promise<{ status: number; body: any; headers: Headers }> {
  return readAnswer(await fetch(url));
}

/** The status, the body parsed as JSON (left as text when it is not) and the headers. */
async function readAnswer(r: Response): Promise<{ status: number; body: any; headers: Headers }> {
  const text = await r.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // leave as text
  }
  return { status: r.status, body: parsed, headers: r.headers };
}
