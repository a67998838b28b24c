/**
 * TLS with certificates made by openssl at test time: TLS 1.2 minimum, client certificates
 * verified against the CA and turned into an identity, and certificate files replaced on disk
 * picked up by new connections without a restart, for HTTPS and for grpc-js.
 */
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { chmod, mkdtemp, rename, rm, writeFile, readFile } from 'node:fs/promises';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls, { type TLSSocket } from 'node:tls';
import { promisify } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { certificateIdentity, peerFromGrpcAuthContext, peerFromTlsSocket, type PeerCertificate } from '../../src/security/authn/mtls.js';
import { grpcServerCredentials, readTlsOptions, ReloadingTls } from '../../src/security/tls/options.js';

const run = promisify(execFile);

let dir: string;

async function openssl(...args: string[]): Promise<void> {
  await run('openssl', args, { cwd: dir });
}

/** A P-256 key and a certificate for `cn` signed by the test CA. */
async function issue(name: string, cn: string, san?: string): Promise<void> {
  await openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`);
  const ext = `${name}.ext`;
  await writeFile(path.join(dir, ext), san === undefined ? 'basicConstraints=CA:FALSE\n' : `basicConstraints=CA:FALSE\nsubjectAltName=${san}\n`);
  await openssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.crt`, '-days', '1', '-extfile', ext);
}

function fingerprintOf(pemText: string): string {
  return new X509Certificate(pemText).fingerprint256;
}

/** The certificate the server presents to a new connection. */
function presented(port: number, options: tls.ConnectionOptions = {}): Promise<{ fingerprint: string; protocol: string | null }> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: options.ca, rejectUnauthorized: false, ...options }, () => {
      const cert = socket.getPeerCertificate();
      const protocol = socket.getProtocol();
      socket.end();
      resolve({ fingerprint: cert.fingerprint256, protocol });
    });
    socket.on('error', reject);
  });
}

async function replace(target: string, source: string): Promise<void> {
  // As certificate tools do: write aside, then rename into place.
  const temp = `${target}.new`;
  await writeFile(temp, await readFile(source));
  await chmod(temp, 0o600);
  await rename(temp, target);
}

async function until(check: () => Promise<boolean> | boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('TLS and mTLS', () => {
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'inferd-tls-'));
    await openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '1', '-subj', '/CN=inferd test CA');
    await issue('server1', 'localhost', 'DNS:localhost,IP:127.0.0.1');
    await issue('server2', 'localhost', 'DNS:localhost,IP:127.0.0.1');
    await issue('client', 'batch.internal', 'URI:spiffe://example.test/batch');
    await openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'rogue.key', '-out', 'rogue.crt', '-days', '1', '-subj', '/CN=batch.internal');
    await replace(path.join(dir, 'live.crt'), path.join(dir, 'server1.crt'));
    await replace(path.join(dir, 'live.key'), path.join(dir, 'server1.key'));
  }, 60_000);

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const files = () => ({ certFile: path.join(dir, 'live.crt'), keyFile: path.join(dir, 'live.key'), caFile: path.join(dir, 'ca.crt'), clientAuth: 'request' as const });

  it('refuses a key that does not match the certificate, naming both files', () => {
    expect(() => readTlsOptions({ certFile: path.join(dir, 'server1.crt'), keyFile: path.join(dir, 'server2.key') })).toThrow(/server1\.crt and key .*server2\.key do not make a usable context/);
    expect(() => readTlsOptions({ certFile: path.join(dir, 'missing.crt'), keyFile: path.join(dir, 'server2.key') })).toThrow(/missing\.crt cannot be read/);
  });

  it('HTTPS: TLS 1.2 minimum, client certificates verified, certificate reloaded without restart', async () => {
    const reloads: string[] = [];
    const errors: Error[] = [];
    const reloading = new ReloadingTls(files(), { onReload: (f) => reloads.push(f), onError: (e) => errors.push(e) }, 100);
    const peers: Array<PeerCertificate | undefined> = [];
    const server = https.createServer(reloading.serverOptions(), (req, res) => {
      peers.push(peerFromTlsSocket(req.socket as TLSSocket));
      res.end('ok');
    });
    reloading.attach(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    try {
      const first = await presented(port);
      expect(first.fingerprint).toBe(fingerprintOf(await readFile(path.join(dir, 'server1.crt'), 'utf8')));
      expect(['TLSv1.2', 'TLSv1.3']).toContain(first.protocol);
      await expect(presented(port, { maxVersion: 'TLSv1.1', minVersion: 'TLSv1' })).rejects.toThrow();

      // A client certificate from the CA is verified and names the caller; a self-signed one is not.
      const get = (cert?: string, key?: string) =>
        new Promise<number>((resolve, reject) => {
          const req = https.get({ host: '127.0.0.1', port, path: '/', ca: readFileSyncText('ca.crt'), servername: 'localhost', ...(cert ? { cert: readFileSyncText(cert), key: readFileSyncText(key!) } : {}) }, (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          });
          req.on('error', reject);
        });
      expect(await get('client.crt', 'client.key')).toBe(200);
      expect(await get('rogue.crt', 'rogue.key')).toBe(200);
      expect(await get()).toBe(200);
      expect(peers[0]).toMatchObject({ verified: true, commonName: 'batch.internal', altNames: ['URI:spiffe://example.test/batch'] });
      expect(certificateIdentity(peers[0]!, { 'spiffe://example.test/batch': ['reader'] }, [])).toEqual({ subject: 'cert:batch.internal', roles: ['reader'] });
      expect(peers[1]).toMatchObject({ verified: false, commonName: 'batch.internal' });
      expect(certificateIdentity(peers[1]!, { 'batch.internal': ['admin'] }, [])).toBeUndefined();
      expect(peers[2]).toBeUndefined();

      // Rotate: the new certificate is served to new connections.
      await replace(path.join(dir, 'live.key'), path.join(dir, 'server2.key'));
      await replace(path.join(dir, 'live.crt'), path.join(dir, 'server2.crt'));
      const second = fingerprintOf(await readFile(path.join(dir, 'server2.crt'), 'utf8'));
      await until(async () => (await presented(port)).fingerprint === second);
      expect(reloads.length).toBeGreaterThanOrEqual(1);

      // A broken write is reported and the previous certificate stays in service.
      await writeFile(path.join(dir, 'live.crt'), '-----BEGIN CERTIFICATE-----\nnot a certificate\n');
      await until(() => errors.length > 0);
      expect((await presented(port)).fingerprint).toBe(second);
    } finally {
      reloading.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await replace(path.join(dir, 'live.crt'), path.join(dir, 'server1.crt'));
      await replace(path.join(dir, 'live.key'), path.join(dir, 'server1.key'));
    }
  });

  it('gRPC mTLS: a client certificate from the CA is verified and read from the call; none is refused', async () => {
    const raw = { serialize: (b: Buffer) => b, deserialize: (b: Buffer) => b };
    const service = {
      Echo: { path: '/inferd.test.T/Echo', requestStream: false, responseStream: false, requestSerialize: raw.serialize, requestDeserialize: raw.deserialize, responseSerialize: raw.serialize, responseDeserialize: raw.deserialize },
    } satisfies grpc.ServiceDefinition;
    const seen: Array<PeerCertificate | undefined> = [];
    const server = new grpc.Server();
    server.addService(service, {
      Echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
        seen.push(peerFromGrpcAuthContext(call.getAuthContext()));
        callback(null, call.request);
      },
    });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpcServerCredentials({ ...files(), clientAuth: 'require' }, 200), (error, bound) => (error ? reject(error) : resolve(bound))),
    );
    const Client = grpc.makeGenericClientConstructor(service, 'T');
    const call = (credentials: grpc.ChannelCredentials) =>
      new Promise<Buffer>((resolve, reject) => {
        const client = new Client(`localhost:${port}`, credentials);
        (client as unknown as { Echo: (req: Buffer, options: grpc.CallOptions, cb: (e: Error | null, r?: Buffer) => void) => void }).Echo(
          Buffer.from('ping'),
          { deadline: Date.now() + 5000 },
          (error, reply) => {
            client.close();
            if (error) reject(error);
            else resolve(reply!);
          },
        );
      });
    try {
      const ca = readFileSync(path.join(dir, 'ca.crt'));
      const good = () => grpc.credentials.createSsl(ca, readFileSync(path.join(dir, 'client.key')), readFileSync(path.join(dir, 'client.crt')));
      // The file-watching providers load asynchronously; the first handshakes may come too early.
      await until(async () => (await call(good()).catch(() => undefined))?.toString() === 'ping');
      expect(seen[0]).toMatchObject({ verified: true, commonName: 'batch.internal', altNames: ['URI:spiffe://example.test/batch'] });
      await expect(call(grpc.credentials.createSsl(ca))).rejects.toThrow();
      await expect(call(grpc.credentials.createSsl(ca, readFileSync(path.join(dir, 'rogue.key')), readFileSync(path.join(dir, 'rogue.crt'))))).rejects.toThrow();
      expect(seen).toHaveLength(1);
    } finally {
      server.forceShutdown();
    }
  });

  it('gRPC: credentials follow the certificate files', async () => {
    const server = new grpc.Server();
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpcServerCredentials({ ...files(), clientAuth: 'none' }, 200), (error, bound) => (error ? reject(error) : resolve(bound))),
    );
    try {
      const first = fingerprintOf(await readFile(path.join(dir, 'server1.crt'), 'utf8'));
      await until(async () => (await presented(port, { ALPNProtocols: ['h2'] })).fingerprint === first);
      await replace(path.join(dir, 'live.key'), path.join(dir, 'server2.key'));
      await replace(path.join(dir, 'live.crt'), path.join(dir, 'server2.crt'));
      const second = fingerprintOf(await readFile(path.join(dir, 'server2.crt'), 'utf8'));
      await until(async () => (await presented(port, { ALPNProtocols: ['h2'] })).fingerprint === second);
    } finally {
      server.forceShutdown();
    }
  });
});

function readFileSyncText(name: string): string {
  return readFileSync(path.join(dir, name), 'utf8');
}
