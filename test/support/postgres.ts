/**
 * A real, throw-away PostgreSQL server for tests: initdb into a fresh temporary directory,
 * pg_ctl start on a free loopback port, stopped and removed afterwards. PostgreSQL refuses to
 * run as root, so as root the binaries run as the `postgres` user.
 */
import { execFile } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { chown, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { freePort } from './ports.js';

const run = promisify(execFile);

export interface PostgresServer {
  /** Connection URL of the `postgres` database as the `postgres` superuser (trust auth). */
  url: string;
  port: number;
  /** Creates an empty database and returns its URL. */
  createDatabase(name: string): Promise<string>;
  stop(): Promise<void>;
}

function findBinaries(): string {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root)
    ? readdirSync(root)
        .filter((v) => existsSync(path.join(root, v, 'bin', 'initdb')) && existsSync(path.join(root, v, 'bin', 'pg_ctl')))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  const newest = versions[0];
  if (newest === undefined) {
    throw new Error(
      'PostgreSQL server binaries (initdb, pg_ctl) are not in /usr/lib/postgresql/*/bin; install them with `apt-get install -y postgresql`',
    );
  }
  return path.join(root, newest, 'bin');
}

async function accepts(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

function explain(error: unknown): string {
  const e = error as { stderr?: unknown; message?: unknown };
  return String(typeof e.stderr === 'string' && e.stderr !== '' ? e.stderr : e.message).trim();
}

export async function startPostgres(): Promise<PostgresServer> {
  const bin = findBinaries();
  const asRoot = process.getuid?.() === 0;
  const dir = await mkdtemp(path.join(os.tmpdir(), 'inferd-pg-'));
  const data = path.join(dir, 'data');
  const log = path.join(dir, 'server.log');
  const env = { ...process.env, LC_ALL: 'C', LANG: 'C' };
  const exec = (tool: string, args: string[]) =>
    asRoot ? run('runuser', ['-u', 'postgres', '--', path.join(bin, tool), ...args], { env }) : run(path.join(bin, tool), args, { env });

  if (asRoot) {
    const { stdout } = await run('id', ['-u', 'postgres']).catch(() => {
      throw new Error('running as root but there is no `postgres` user to run PostgreSQL as; install the postgresql package');
    });
    const uid = Number(stdout.trim());
    const gid = Number((await run('id', ['-g', 'postgres'])).stdout.trim());
    await chown(dir, uid, gid);
  }
  try {
    await exec('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync']);
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw new Error(`initdb failed: ${explain(error)}`);
  }

  let port = 0;
  let url = '';
  let started = false;
  // Another process may take the free port between the probe and the start: try a few.
  for (let attempt = 0; attempt < 3 && !started; attempt++) {
    port = await freePort();
    url = `postgres://postgres@127.0.0.1:${port}/postgres`;
    try {
      await exec('pg_ctl', [
        '-D',
        data,
        '-l',
        log,
        '-w',
        '-t',
        '60',
        '-o',
        `-k ${dir} -p ${port} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off`,
        'start',
      ]);
      started = true;
    } catch {
      started = false;
    }
  }
  if (!started) {
    const tail = await run('tail', ['-n', '20', log]).then((r) => r.stdout, () => '');
    await rm(dir, { recursive: true, force: true });
    throw new Error(`PostgreSQL did not start (pg_ctl start failed three times):\n${tail}`);
  }
  const deadline = Date.now() + 30_000;
  while (!(await accepts(url))) {
    if (Date.now() > deadline) throw new Error(`PostgreSQL on port ${port} does not accept connections (log: ${log})`);
    await new Promise((r) => setTimeout(r, 100));
  }

  let stopped = false;
  return {
    url,
    port,
    async createDatabase(name: string): Promise<string> {
      if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`'${name}' is not a plain database name`);
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        await client.query(`CREATE DATABASE ${name}`);
      } finally {
        await client.end();
      }
      return `postgres://postgres@127.0.0.1:${port}/${name}`;
    },
    async stop(): Promise<void> {
      if (stopped) return;
      stopped = true;
      try {
        await exec('pg_ctl', ['-D', data, '-m', 'fast', '-w', '-t', '60', 'stop']);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  };
}
