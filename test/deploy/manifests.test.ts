/**
 * Every manifest in deploy/ validated offline: core kinds by kubernetes-validate (strict),
 * Argo Rollouts' Rollout and AnalysisTemplate by the project's CRD schemas (strict), the
 * Kustomizations by what they list, and the Dockerfile by hadolint. Each validator is also
 * shown a broken manifest, so a validator that accepts anything cannot pass this test.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { getAnalysis } from '../../src/routing/admin.js';
import { TrafficService } from '../../src/routing/service.js';
import { venvDir, venvPython } from '../support/python.js';

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, '..', '..');
const crds = path.join(root, '..', 'shared', 'schemas', 'argo-rollouts');
const script = path.join(import.meta.dirname, 'validate_manifests.py');

interface Result {
  file: string;
  kind: string;
  name: string | null;
  validator: string;
  ok: boolean;
  errors: string[];
}

async function validateDir(dir: string): Promise<Result[]> {
  const { stdout } = await run(venvPython(), [script, dir, crds], { maxBuffer: 16 * 1024 * 1024, timeout: 120_000 });
  return (JSON.parse(stdout) as { results: Result[] }).results;
}

async function hadolint(file: string): Promise<{ code: number; output: string }> {
  try {
    const { stdout } = await run(path.join(venvDir(), 'bin', 'hadolint'), ['--no-color', file], { timeout: 60_000 });
    return { code: 0, output: stdout };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, output: `${e.stdout}${e.stderr}` };
  }
}

describe('deploy/ manifests', () => {
  let tmp: string;
  beforeAll(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'inferd-manifests-'));
  });
  afterAll(() => rm(tmp, { recursive: true, force: true }));

  it('all pass strict validation', async () => {
    const results = await validateDir(path.join(root, 'deploy'));
    const failures = results.filter((r) => !r.ok).map((r) => `${r.file} ${r.kind}/${r.name}: ${r.errors.join('; ')}`);
    expect(failures).toEqual([]);
    const seen = new Set(results.map((r) => `${r.validator}:${r.kind}`));
    for (const expected of [
      'kubernetes-validate:Deployment',
      'kubernetes-validate:Service',
      'kubernetes-validate:PodDisruptionBudget',
      'kubernetes-validate:HorizontalPodAutoscaler',
      'argo-rollouts-crd:Rollout',
      'argo-rollouts-crd:AnalysisTemplate',
      'kustomization:Kustomization',
    ]) {
      expect(seen).toContain(expected);
    }
  }, 120_000);

  it('rejects broken manifests, naming the field', async () => {
    const dir = path.join(tmp, 'broken');
    await mkdir(dir, { recursive: true });
    const rollout = YAML.parse(await readFile(path.join(root, 'deploy', 'argo-rollouts', 'rollout.yaml'), 'utf8')) as Record<string, any>;
    rollout.spec.strategy.canary.stepz = [];
    rollout.spec.replicas = 'ten';
    rollout.spec.template.spec.containers[0].imagePullPolicy = undefined;
    rollout.spec.template.spec.containers[0].livenessProbe.httpGet.paht = '/health';
    const template = YAML.parse(await readFile(path.join(root, 'deploy', 'argo-rollouts', 'analysis-template.yaml'), 'utf8')) as Record<string, any>;
    template.spec.metrics[0].provider.web.jsonpath = template.spec.metrics[0].provider.web.jsonPath;
    delete template.spec.metrics[1].provider.web.url;
    const deployment = YAML.parse(await readFile(path.join(root, 'deploy', 'kubernetes', 'deployment.yaml'), 'utf8')) as Record<string, any>;
    deployment.spec.template.spec.containers[0].resource = {};
    await writeFile(path.join(dir, 'rollout.yaml'), YAML.stringify(rollout));
    await writeFile(path.join(dir, 'analysis.yaml'), YAML.stringify(template));
    await writeFile(path.join(dir, 'deployment.yaml'), YAML.stringify(deployment));
    await writeFile(path.join(dir, 'widget.yaml'), 'apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n');
    await writeFile(path.join(dir, 'kustomization.yaml'), 'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [rollout.yaml, missing.yaml]\n');
    const results = await validateDir(dir);
    const errors = (file: string) => results.filter((r) => r.file === file).flatMap((r) => r.errors).join('\n');
    expect(results.every((r) => !r.ok)).toBe(true);
    expect(errors('rollout.yaml')).toMatch(/spec\.strategy\.canary: Additional properties are not allowed \('stepz' was unexpected\)/);
    expect(errors('rollout.yaml')).toMatch(/spec\.replicas: 'ten' is not of type 'integer'/);
    expect(errors('rollout.yaml')).toMatch(/livenessProbe\.httpGet: Additional properties are not allowed \('paht' was unexpected\)/);
    expect(errors('analysis.yaml')).toMatch(/'jsonpath' was unexpected/);
    expect(errors('analysis.yaml')).toMatch(/'url' is a required property/);
    expect(errors('deployment.yaml')).toMatch(/resource/);
    expect(errors('widget.yaml')).toMatch(/no schema for example\.com\/v1 Widget: not validated/);
    expect(errors('kustomization.yaml')).toMatch(/resource missing\.yaml does not exist/);
    expect(errors('kustomization.yaml')).toMatch(/analysis\.yaml is not listed/);
  }, 120_000);

  it('the Dockerfile passes hadolint, which does reject a bad one', async () => {
    const ours = await hadolint(path.join(root, 'deploy', 'Dockerfile'));
    expect(ours.output).toBe('');
    expect(ours.code).toBe(0);
    const bad = path.join(tmp, 'Dockerfile');
    await writeFile(bad, 'FROM node:latest\nRUN cd /app && npm install\n');
    const theirs = await hadolint(bad);
    expect(theirs.code).not.toBe(0);
    expect(theirs.output).toMatch(/DL3007/);
  }, 60_000);

  it("the AnalysisTemplate's web metrics read fields the analysis endpoint returns", async () => {
    const template = YAML.parse(await readFile(path.join(root, 'deploy', 'argo-rollouts', 'analysis-template.yaml'), 'utf8')) as {
      spec: { metrics: Array<{ provider: { web: { url: string; jsonPath: string } } }> };
    };
    const traffic = await TrafficService.open(new Map());
    for (let i = 0; i < 10; i++) traffic.observe('fraud_detector', '1', false, 10 + i);
    const { body } = await getAnalysis({ traffic }, 'fraud_detector', { window: '2m' });
    await traffic.close();
    for (const metric of template.spec.metrics) {
      expect(metric.provider.web.url).toMatch(/:8000\/v2\/admin\/models\/\{\{args\.model\}\}\/analysis\?window=\{\{args\.window\}\}$/);
      // {$.a.b} -> body.a.b is a number
      const keys = /^\{\$\.(.+)\}$/.exec(metric.provider.web.jsonPath)![1]!.split('.');
      const value = keys.reduce<unknown>((o, k) => (o as Record<string, unknown>)[k], body);
      expect(typeof value).toBe('number');
    }
  });
});
