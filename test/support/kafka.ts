/**
 * A real, throw-away single-node Kafka broker (KRaft, broker + controller in one JVM) for tests.
 * The jars come from scripts/setup/components/kafka.sh ($SETUP_CACHE/kafka/libs). Storage is
 * formatted into a fresh temporary directory, the broker listens on free loopback ports, and
 * stop() kills it and removes its data.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './ports.js';
import { setupCacheDir } from './setup-cache.js';

const run = promisify(execFile);

export interface KafkaBroker {
  /** host:port of the PLAINTEXT listener. */
  bootstrap: string;
  stop(): Promise<void>;
}

function libsDir(): string {
  const cache = setupCacheDir();
  const libs = path.join(cache, 'kafka', 'libs');
  if (!existsSync(libs)) throw new Error(`Kafka jars are not in ${libs}; run scripts/setup/test-deps.sh (component: kafka)`);
  return libs;
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

const JVM = ['-Xms128m', '-Xmx512m', '-XX:+UseSerialGC', '-XX:TieredStopAtLevel=1', '-Djava.awt.headless=true'];

export async function startKafka(): Promise<KafkaBroker> {
  const classpath = `${libsDir()}/*`;
  const dir = await mkdtemp(path.join(os.tmpdir(), 'inferd-kafka-'));
  const port = await freePort();
  const controllerPort = await freePort();
  const properties = [
    'process.roles=broker,controller',
    'node.id=1',
    `controller.quorum.bootstrap.servers=127.0.0.1:${controllerPort}`,
    `listeners=PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controllerPort}`,
    `advertised.listeners=PLAINTEXT://127.0.0.1:${port}`,
    'controller.listener.names=CONTROLLER',
    'listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT',
    'inter.broker.listener.name=PLAINTEXT',
    `log.dirs=${path.join(dir, 'data')}`,
    'num.partitions=1',
    'auto.create.topics.enable=false',
    'offsets.topic.replication.factor=1',
    'offsets.topic.num.partitions=3',
    'transaction.state.log.replication.factor=1',
    'transaction.state.log.min.isr=1',
    'transaction.state.log.num.partitions=3',
    'share.coordinator.state.topic.replication.factor=1',
    'share.coordinator.state.topic.min.isr=1',
    'group.initial.rebalance.delay.ms=0',
    // Fast failure detection: a killed consumer's transaction is aborted and its group seat freed quickly.
    'transaction.abort.timed.out.transaction.cleanup.interval.ms=2000',
    'group.min.session.timeout.ms=1000',
    'log.flush.interval.messages=1000000',
  ].join('\n');
  const config = path.join(dir, 'server.properties');
  await writeFile(config, `${properties}\n`);
  try {
    await run('java', [...JVM, '-cp', classpath, 'kafka.tools.StorageTool', 'format', '--standalone', '-t', 'inferd-test-cluster-0001', '-c', config], { timeout: 60_000 });
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw new Error(`kafka storage format failed: ${(error as { stderr?: string }).stderr ?? String(error)}`);
  }
  const child: ChildProcess = spawn('java', [...JVM, '-cp', classpath, 'kafka.Kafka', config], { stdio: ['ignore', 'pipe', 'pipe'], detached: false });
  let out = '';
  const keep = (d: Buffer) => {
    out += d.toString();
    if (out.length > 64_000) out = out.slice(-32_000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = Date.now() + 60_000;
  while (!(await listening(port))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      await rm(dir, { recursive: true, force: true });
      throw new Error(`Kafka did not listen on ${port}:\n${out.slice(-4000)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  let stopped = false;
  return {
    bootstrap: `127.0.0.1:${port}`,
    async stop() {
      if (stopped) return;
      stopped = true;
      // Data is thrown away, so there is nothing to flush: kill at once.
      child.kill('SIGKILL');
      await exited;
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export interface ConsoleRecord {
  partition: number;
  offset: number;
  headers: string;
  key: string;
  value: string;
}

/**
 * Reads a whole topic with Kafka's own console consumer (the Java client) at isolation level
 * read_committed: a reference reader for exactly-once checks, independent of the client under
 * test. Stops after `idleMs` without a new record.
 */
export async function readCommittedWithJavaClient(bootstrap: string, topic: string, idleMs = 4000): Promise<ConsoleRecord[]> {
  const { stdout } = await run(
    'java',
    [
      ...JVM,
      '-cp',
      `${libsDir()}/*`,
      'org.apache.kafka.tools.consumer.ConsoleConsumer',
      '--bootstrap-server',
      bootstrap,
      '--topic',
      topic,
      '--from-beginning',
      '--isolation-level',
      'read_committed',
      '--timeout-ms',
      String(idleMs),
      '--property',
      'print.partition=true',
      '--property',
      'print.offset=true',
      '--property',
      'print.headers=true',
      '--property',
      'print.key=true',
      '--property',
      'print.timestamp=false',
    ],
    { maxBuffer: 512 * 1024 * 1024, timeout: 300_000 },
  ).catch((error: { stdout?: string; code?: number }) => {
    // The console consumer exits with status 1 when --timeout-ms passes: that is the normal end.
    if (typeof error.stdout === 'string') return { stdout: error.stdout };
    throw error;
  });
  const out: ConsoleRecord[] = [];
  for (const line of stdout.split('\n')) {
    if (!line.startsWith('Partition:')) continue;
    const [p, o, headers, key, ...value] = line.split('\t');
    out.push({ partition: Number(p!.slice('Partition:'.length)), offset: Number(o!.slice('Offset:'.length)), headers: headers ?? '', key: key ?? '', value: value.join('\t') });
  }
  return out;
}

/** A header's value as the console consumer prints headers (`k1:v1,k2:v2`). */
export function consoleHeader(record: ConsoleRecord, name: string): string | undefined {
  const match = new RegExp(`(?:^|,)${name.replace(/[-]/g, '\\-')}:([^,]*)`).exec(record.headers);
  return match?.[1];
}
