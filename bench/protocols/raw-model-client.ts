/**
 * Drives `raw-model.ts --serve` in its own process: onnxruntime-node `session.run` alone, asked
 * over stdin for the rows per second at some batch sizes, so that benches can measure the model
 * alone right around the server cells they compare with it.
 */
import { spawn } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import type { RawPoint } from './raw-model.js';

const ROOT = resolve(import.meta.dirname, '..', '..');

export class RawModelProcess {
  private buffer = '';
  private waiting: Array<(line: string) => void> = [];

  private constructor(
    private readonly stdin: Writable,
    stdout: Readable,
  ) {
    stdout.on('data', (chunk: Buffer) => {
      this.buffer += chunk.toString();
      let newline: number;
      while ((newline = this.buffer.indexOf('\n')) >= 0) {
        const line = this.buffer.slice(0, newline);
        this.buffer = this.buffer.slice(newline + 1);
        this.waiting.shift()?.(line);
      }
    });
  }

  /** `args`: raw-model.ts's options after `--serve` (`--model`, `--threads`...); its stderr goes to `logFile`, or to ours. */
  static async start(args: string[], logFile?: string): Promise<RawModelProcess> {
    const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'bench', 'protocols', 'raw-model.ts'), '--serve', ...args], {
      cwd: ROOT,
      stdio: ['pipe', 'pipe', logFile === undefined ? 'inherit' : 'pipe'],
    });
    if (logFile !== undefined) child.stderr?.on('data', (c: Buffer) => appendFileSync(logFile, c));
    const instance = new RawModelProcess(child.stdin!, child.stdout!);
    const ready = await Promise.race([
      instance.nextLine(),
      new Promise<string>((_, rej) => child.once('exit', (code) => rej(new Error(`raw-model.ts exited with ${code}${logFile === undefined ? '' : `; see ${logFile}`}`)))),
    ]);
    if (ready !== 'ready') throw new Error(`raw-model.ts said '${ready}' instead of 'ready'`);
    return instance;
  }

  private nextLine(): Promise<string> {
    return new Promise((res) => this.waiting.push(res));
  }

  async measure(batches: number[], seconds: number): Promise<RawPoint[]> {
    const answer = this.nextLine();
    this.stdin.write(`${JSON.stringify({ batches, seconds })}\n`);
    return JSON.parse(await answer) as RawPoint[];
  }

  close(): void {
    this.stdin.end();
  }
}
