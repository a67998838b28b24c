// A repository behind plain HTTP(S): one artifact by URL, or an index listing files with their
// SHA-256. Served from a throw-away file server on the loopback.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { prepareModelRepository } from '../../src/storage/open.js';
import { RemoteRepository } from '../../src/storage/remote-repository.js';
import { BC_LABELS, BC_REQUEST, request } from '../models/support.js';
import { EXAMPLES } from '../support/paths.js';
import { startInProcess } from '../support/server.js';
import { filesUnder, logSink } from './support.js';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';

let files: Map<string, Buffer>;
let server: Server;
let base: string;

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

beforeAll(async () => {
  const model = await readFile(join(EXAMPLES, 'breast_cancer', '1', 'model.onnx'));
  const config = await readFile(join(EXAMPLES, 'breast_cancer', 'config.yaml'));
  files = new Map([
    ['/artifacts/breast_cancer.onnx', model],
    ['/blobs/config', config],
    ['/blobs/model', model],
  ]);
  const index = { files: [{ path: 'breast_cancer/config.yaml', url: '../blobs/config', sha256: sha(config) }, { path: 'breast_cancer/1/model.onnx', url: '../blobs/model', sha256: sha(model), size: model.length }] };
  const bad = { files: [{ path: 'breast_cancer/1/model.onnx', url: '../blobs/model', sha256: sha(config) }] };
  files.set('/repo/index.json', Buffer.from(JSON.stringify(index)));
  files.set('/repo/bad.json', Buffer.from(JSON.stringify(bad)));
  server = createServer((req, res) => {
    const body = files.get(req.url ?? '');
    if (!body) return res.writeHead(404).end();
    res.writeHead(200, { 'content-length': body.length, etag: `"${sha(body).slice(0, 16)}"` });
    res.end(req.method === 'HEAD' ? undefined : body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const address = server.address();
  base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
});

afterAll(async () => {
  await new Promise((r) => server.close(r));
});

describe('http(s) repositories', () => {
  it('one artifact by URL becomes model <file name> version 1', async () => {
    const remote = new RemoteRepository(`${base}/artifacts/breast_cancer.onnx`, { cacheDir: await mkdtemp(join(tmpdir(), 'inferd-cache-')) });
    const report = await remote.sync();
    expect(report).toMatchObject({ files: 1, downloaded: 1, refused: [] });
    expect(await filesUnder(remote.localRoot)).toEqual(['breast_cancer/1/model.onnx']);
    expect((await remote.sync()).downloaded).toBe(0);
  });

  it('a partial file a killed process left is removed at the next start, never published', async () => {
    const cacheDir = await mkdtemp(join(tmpdir(), 'inferd-cache-'));
    await mkdir(join(cacheDir, 'tmp'), { recursive: true });
    // pid 2^22 + 1 is above Linux's pid_max limit: no live process has it.
    await writeFile(join(cacheDir, 'tmp', '4194305-deadbeef0000.part'), 'half a download');
    const remote = new RemoteRepository(`${base}/artifacts/breast_cancer.onnx`, { cacheDir });
    await remote.sync();
    expect(await filesUnder(join(cacheDir, 'tmp'))).toEqual([]);
    expect(await filesUnder(join(cacheDir, 'blobs'))).toHaveLength(1);
  });

  it('an index with SHA-256s serves its models', async () => {
    const log = logSink();
    const prepared = await prepareModelRepository(loadConfig({ env: {}, overrides: { model_repository: `${base}/repo/index.json` } }), {
      cacheDir: await mkdtemp(join(tmpdir(), 'inferd-cache-')),
      s3: {},
      logger: log.logger,
    });
    const { server: s, url } = await startInProcess(prepared.config.model_repository);
    try {
      const r = await request(url, 'POST', '/v2/models/breast_cancer/infer', BC_REQUEST);
      expect(r.status).toBe(200);
      expect(r.body.outputs.find((o: { name: string }) => o.name === 'label').data).toEqual(BC_LABELS);
      expect(log.messages('artifact downloaded').map((l) => l['file']).sort()).toEqual(['breast_cancer/1/model.onnx', 'breast_cancer/config.yaml']);
    } finally {
      await s.shutdown(5000);
      prepared.close();
    }
  });

  it('a file whose bytes do not hash to the index SHA-256 is refused', async () => {
    const remote = new RemoteRepository(`${base}/repo/bad.json`, { cacheDir: await mkdtemp(join(tmpdir(), 'inferd-cache-')) });
    const report = await remote.sync();
    expect(report.refused).toHaveLength(1);
    expect(report.refused[0]!.reason).toMatch(/corrupted.*sha256/);
    expect(await filesUnder(remote.localRoot)).toEqual([]);
  });

  it('a URL that answers 404 is a clear error', async () => {
    const remote = new RemoteRepository(`${base}/repo/missing.json`, { cacheDir: await mkdtemp(join(tmpdir(), 'inferd-cache-')) });
    await expect(remote.sync()).rejects.toThrow(/repo\/missing.json cannot be listed: .*HTTP 404/);
  });
});
