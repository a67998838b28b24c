/**
 * A real server whose breast_cancer version 2 shadows version 1 at 100% (from the start, or set
 * at run time through the admin API), then is promoted to serve every caller. Reports the nice
 * value of each thread concerned as the kernel reports it (/proc/<pid>/task/<tid>/stat, field
 * 19): before, while it is a shadow, and after its promotion. Run in the test process and, by
 * shadow-priority-child.ts, in a child process without privileges.
 */
import { copyFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { ModelVersion } from '../../src/models/model-version.js';
import type { InferdServer } from '../../src/server/index.js';
import { EXAMPLES } from '../support/paths.js';
import { makeRepository, startInProcess } from '../support/server.js';

export interface ThreadNice {
  tid: number;
  nice: number;
}

export interface ScenarioOptions {
  /** onnxruntime intra-op threads per session: 1 runs on the worker's thread, 2 starts a pool thread. */
  intraOpThreads: 1 | 2;
  /** The shadow in the server configuration (true), or set through the admin API once serving. */
  shadowAtStart: boolean;
}

export interface PriorityReport {
  euid: number;
  instances: number;
  /** Version 2's workers before the shadow is set at run time (none when configured at start). */
  beforeShadow: ThreadNice[];
  whileShadow: {
    main: number;
    callers: ThreadNice[];
    shadow: ThreadNice[];
    /** Every thread of the process at a nice other than 0 (the shadow's workers and the threads they started). */
    lowered: ThreadNice[];
    completed: number;
  };
  afterPromotion: {
    shadow: ThreadNice[];
    lowered: ThreadNice[];
    /** Versions that answered requests sent after the promotion. */
    answeredBy: string[];
  };
}

/** A thread's nice value, field 19 of its stat line (fields counted after the command name's closing parenthesis). */
export function niceOf(tid: number): number {
  const stat = readFileSync(`/proc/${process.pid}/task/${tid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
}

function threadsNotAtZero(): ThreadNice[] {
  const out: ThreadNice[] = [];
  for (const name of readdirSync(`/proc/${process.pid}/task`)) {
    try {
      const nice = niceOf(Number(name));
      if (nice !== 0) out.push({ tid: Number(name), nice });
    } catch {
      // The thread ended meanwhile.
    }
  }
  return out;
}

async function workers(version: ModelVersion): Promise<ThreadNice[]> {
  return (await version.workerPriorities()).map((s) => ({ tid: s.tid, nice: niceOf(s.tid) }));
}

const INSTANCES = 2;

export async function priorityScenario(options: ScenarioOptions): Promise<PriorityReport> {
  const repo = await makeRepository({ breast_cancer: { copyFrom: path.join(EXAMPLES, 'breast_cancer') } });
  let server: InferdServer | undefined;
  try {
    await mkdir(path.join(repo, 'breast_cancer', '2'), { recursive: true });
    await copyFile(path.join(repo, 'breast_cancer', '1', 'model.onnx'), path.join(repo, 'breast_cancer', '2', 'model.onnx'));
    const configFile = path.join(repo, 'breast_cancer', 'config.yaml');
    // Two intra-op threads: onnxruntime starts a pool thread per session, from the worker thread.
    const config = (await readFile(configFile, 'utf8')).replace('instances: 1', `instances: ${INSTANCES}`).replace('intra_op_threads: 1', `intra_op_threads: ${options.intraOpThreads}`);
    await writeFile(configFile, `${config}\nversion_policy: { all: true }\n`);
    const split = { variants: [{ version: 1, weight: 100 }] };
    const shadowPolicy = { version: 2, percent: 100, batch_window: '5ms' };
    const started = await startInProcess(repo, {
      models: [{ repository: 'breast_cancer', traffic: options.shadowAtStart ? { split, shadow: shadowPolicy } : { split } }],
    });
    server = started.server;
    const url = started.url;
    const versions = server.manager.serving.versionsOf('breast_cancer');
    const v1 = versions.find((v) => v.version === '1')!;
    const v2 = versions.find((v) => v.version === '2')!;
    const setPolicy = async (policy: unknown): Promise<void> => {
      const put = await fetch(`${url}/v2/admin/models/breast_cancer/traffic`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ policy }) });
      if (put.status !== 200) throw new Error(`traffic change answered ${put.status}: ${await put.text()}`);
    };
    const settle = async (done: (threads: ThreadNice[]) => boolean): Promise<ThreadNice[]> => {
      let threads = await workers(v2);
      for (let i = 0; i < 400 && !done(threads); i++) {
        await new Promise((r) => setTimeout(r, 25));
        threads = await workers(v2);
      }
      return threads;
    };
    let beforeShadow: ThreadNice[] = [];
    if (!options.shadowAtStart) {
      beforeShadow = await workers(v2);
      await setPolicy({ split, shadow: shadowPolicy });
      await settle((threads) => threads.length === INSTANCES && threads.every((t) => t.nice !== 0));
    }

    const infer = async (): Promise<string> => {
      const body = { inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 30], data: Array.from({ length: 30 }, (_, i) => (i % 7) / 7) }] };
      const r = await fetch(`${url}/v2/models/breast_cancer/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      if (r.status !== 200) throw new Error(`inference answered ${r.status}: ${await r.text()}`);
      return ((await r.json()) as { model_version: string }).model_version;
    };
    await Promise.all(Array.from({ length: 40 }, infer));
    let completed = 0;
    for (let i = 0; i < 200 && completed < 40; i++) {
      const view = (await (await fetch(`${url}/v2/admin/models/breast_cancer/traffic`)).json()) as { shadow?: { completed: number } };
      completed = view.shadow?.completed ?? 0;
      if (completed < 40) await new Promise((r) => setTimeout(r, 25));
    }
    const whileShadow = { main: niceOf(process.pid), callers: await workers(v1), shadow: await workers(v2), lowered: threadsNotAtZero(), completed };

    // Promotion: version 2 serves every caller, no shadow any more.
    await setPolicy({ split: { variants: [{ version: 2, weight: 100 }] } });
    // Every instance's new worker up (they start one by one), each at normal priority.
    const shadow = await settle((threads) => threads.length === INSTANCES && threads.every((t) => t.nice === 0));
    // The replaced workers end once they have answered what they held.
    for (let i = 0; i < 400 && threadsNotAtZero().length > 0; i++) await new Promise((r) => setTimeout(r, 25));
    const answeredBy = [...new Set(await Promise.all(Array.from({ length: 10 }, infer)))];
    const afterPromotion = { shadow, lowered: threadsNotAtZero(), answeredBy };
    return { euid: process.geteuid?.() ?? -1, instances: INSTANCES, beforeShadow, whileShadow, afterPromotion };
  } finally {
    await server?.shutdown(10_000);
    await rm(repo, { recursive: true, force: true });
  }
}
