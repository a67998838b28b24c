import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import ts from 'typescript';
import { afterAll, describe, expect, it } from 'vitest';
import { packageDefinition, PROTO_FILES, protoDirectory } from '../../../src/server/grpc/proto.js';
import { repoRoot } from './fixture.js';

const sourceDir = resolve(repoRoot, 'src', 'server', 'grpc', 'proto');

describe('gRPC .proto files', () => {
  it('are found next to the module when running from src', () => {
    expect(resolve(protoDirectory())).toBe(sourceDir);
    const definition = packageDefinition();
    expect(Object.keys(definition['inference.GRPCInferenceService']!)).toEqual(
      expect.arrayContaining(['ModelInfer', 'ModelStreamInfer', 'ModelConfig', 'ModelStatistics', 'RepositoryIndex']),
    );
    expect(Object.keys(definition['grpc.health.v1.Health']!)).toEqual(['Check', 'Watch']);
  });

  describe('from a compiled tree (tsc copies no .proto files to dist)', () => {
    // A miniature package: dist/server/grpc/proto.js compiled from the source, the .proto
    // files only under src/, and the real node_modules.
    const root = mkdtempSync(join(tmpdir(), 'inferd-proto-'));
    afterAll(() => rmSync(root, { recursive: true, force: true }));
    const distDir = join(root, 'dist', 'server', 'grpc');
    mkdirSync(distDir, { recursive: true });
    mkdirSync(join(root, 'src', 'server', 'grpc', 'proto'), { recursive: true });
    for (const file of PROTO_FILES) copyFileSync(join(sourceDir, file), join(root, 'src', 'server', 'grpc', 'proto', file));
    symlinkSync(resolve(repoRoot, 'node_modules'), join(root, 'node_modules'), 'dir');
    writeFileSync(join(root, 'package.json'), '{"type":"module"}');
    // proto.ts and the one module it imports from the project.
    for (const [from, to] of [
      [['server', 'grpc', 'proto.ts'], join(distDir, 'proto.js')],
      [['config', 'environment.ts'], join(root, 'dist', 'config', 'environment.js')],
    ] as const) {
      const compiled = ts.transpileModule(readFileSync(resolve(repoRoot, 'src', ...from), 'utf8'), {
        compilerOptions: { module: ts.ModuleKind.ES2022, target: ts.ScriptTarget.ES2022 },
        fileName: from[from.length - 1]!,
      });
      mkdirSync(dirname(to), { recursive: true });
      writeFileSync(to, compiled.outputText);
    }

    const probe = (env: NodeJS.ProcessEnv = {}): { dir: string; services: string[] } => {
      const script = `
        const m = await import(${JSON.stringify(join(distDir, 'proto.js'))});
        const services = Object.keys(m.packageDefinition()).filter((k) => k.endsWith('Service') || k.endsWith('Health'));
        console.log(JSON.stringify({ dir: m.protoDirectory(), services }));`;
      const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
        env: { ...process.env, INFERD_PROTO_DIR: '', ...env },
        encoding: 'utf8',
      });
      return JSON.parse(out) as { dir: string; services: string[] };
    };

    it('finds them under src/ from dist/', () => {
      const { dir, services } = probe();
      expect(resolve(dir)).toBe(join(root, 'src', 'server', 'grpc', 'proto'));
      expect(services.sort()).toEqual(['grpc.health.v1.Health', 'inference.GRPCInferenceService']);
    });

    it('takes INFERD_PROTO_DIR first', () => {
      const elsewhere = join(root, 'elsewhere');
      mkdirSync(elsewhere);
      for (const file of PROTO_FILES) copyFileSync(join(sourceDir, file), join(elsewhere, file));
      expect(probe({ INFERD_PROTO_DIR: elsewhere }).dir).toBe(elsewhere);
    });
  });
});
