import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { Job } from 'kubernetes-models/batch/v1/Job';
import { PersistentVolumeClaim } from 'kubernetes-models/v1/PersistentVolumeClaim';
import { Service } from 'kubernetes-models/v1/Service';
import type { IContainer, IPodSpec } from 'kubernetes-models/v1';
import { workspaceRoot } from '@dann/data';

/**
 * The Kubernetes recipe in deploy/: every manifest validates against the Kubernetes API types, and the pieces fit:
 * the containers run the image's entry point with options its commands take, files come from mounted Secrets,
 * trainers reach the coordinator through its Service. What this machine cannot test (a cluster, an image build)
 * is said in deploy/README.md.
 */
const ROOT = workspaceRoot();
const DEPLOY = join(ROOT, 'deploy');
const ENTRYPOINT = join(DEPLOY, 'entrypoint.sh');
/** The Secrets deploy/README.md tells users to create, and the keys each holds. */
const SECRETS: Record<string, string[]> = { 'dann-token': ['token'], 'dann-tls': ['tls.crt', 'tls.key'] };

const MODELS = {
  'apps/v1 Deployment': Deployment,
  'batch/v1 Job': Job,
  'v1 PersistentVolumeClaim': PersistentVolumeClaim,
  'v1 Service': Service,
} as const;

type Manifest = { apiVersion: string; kind: string; metadata: { name: string } } & Record<string, unknown>;

function manifests(): Manifest[] {
  const dir = join(DEPLOY, 'k8s');
  return readdirSync(dir)
    .filter((f) => f.endsWith('.yaml'))
    .flatMap((f) =>
      parseAllDocuments(readFileSync(join(dir, f), 'utf8')).map((doc) => {
        assert.deepEqual(doc.errors, [], `${f}: YAML errors`);
        return doc.toJS() as Manifest;
      }),
    );
}

const byKind = (all: Manifest[], kind: string) => all.filter((m) => m.kind === kind);

/** The pod spec of a Deployment or Job. */
const podOf = (m: Manifest) =>
  (m.spec as { template: { spec: IPodSpec; metadata: { labels: Record<string, string> } } }).template;

/** `--flag value` pairs and bare flags of a container's args after the role. */
function flags(c: IContainer): Map<string, string | true> {
  const args = c.args ?? [];
  const out = new Map<string, string | true>();
  for (let i = 1; i < args.length; i++) {
    assert.match(args[i], /^--[a-z-]+$/, `${c.name}: argument ${i} (${args[i]}) is not an option name`);
    const value = args[i + 1];
    if (value !== undefined && !value.startsWith('--')) {
      out.set(args[i], value);
      i++;
    } else out.set(args[i], true);
  }
  return out;
}

test('every manifest validates against the Kubernetes API types of its kind', () => {
  const all = manifests();
  assert.ok(all.length >= 4, `${all.length} manifests`);
  for (const m of all) {
    const Model = MODELS[`${m.apiVersion} ${m.kind}` as keyof typeof MODELS];
    assert.ok(Model, `${m.kind} ${m.metadata?.name}: no model for ${m.apiVersion} ${m.kind} (add it to MODELS)`);
    assert.doesNotThrow(() => new Model(m as never).validate(), `${m.kind} ${m.metadata.name}`);
  }
  // The validation is real: a wrongly typed field is refused.
  const deployment = structuredClone(byKind(all, 'Deployment')[0]);
  podOf(deployment).spec.containers[0].ports = [{ containerPort: 'wss' as never }];
  assert.throws(() => new Deployment(deployment as never).validate(), /containerPort must be integer/);
});

test("the containers run the image's entry point with options its commands take, and read files from mounted Secrets", {
  timeout: 60_000,
}, () => {
  const all = manifests();
  const pods = [...byKind(all, 'Deployment'), ...byKind(all, 'Job')];
  const usage = new Map<string, string>();
  for (const role of ['coordinator', 'trainer']) {
    const r = spawnSync('sh', [ENTRYPOINT, role, '--usage'], { cwd: ROOT, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    usage.set(role, r.stdout);
  }
  const roles = new Set<string>();
  for (const m of pods) {
    const { spec } = podOf(m);
    for (const c of spec.containers) {
      const where = `${m.kind} ${m.metadata.name}, container ${c.name}`;
      assert.equal(c.image, 'dann-edge:latest', `${where}: the image deploy/Dockerfile builds`);
      assert.equal(c.command, undefined, `${where}: runs the image's entry point`);
      const role = c.args?.[0] ?? '';
      assert.ok(usage.has(role), `${where}: first argument ${role} is not a role of deploy/entrypoint.sh`);
      roles.add(role);
      for (const [flag, value] of flags(c)) {
        assert.match(usage.get(role)!, new RegExp(`\\n  ${flag}[ \\n]`), `${where}: ${role} has no option ${flag}`);
        if (typeof value !== 'string' || !value.startsWith('/')) continue;
        // A file option: under a mount of a declared volume; a Secret's file is a key it holds.
        const mount = c.volumeMounts?.find((v) => value.startsWith(`${v.mountPath}/`));
        assert.ok(mount, `${where}: ${flag} ${value} is on no mounted volume`);
        const volume = spec.volumes?.find((v) => v.name === mount.name);
        assert.ok(volume, `${where}: mount ${mount.name} has no volume`);
        if (volume.secret) {
          const keys = SECRETS[volume.secret.secretName!];
          assert.ok(keys, `${where}: Secret ${volume.secret.secretName} is not one deploy/README.md creates`);
          const file = value.slice(mount.mountPath.length + 1);
          const item = volume.secret.items?.find((i) => i.path === file);
          assert.ok(item ? keys.includes(item.key) : keys.includes(file), `${where}: ${value} is no key of the Secret`);
        }
      }
      for (const v of c.volumeMounts ?? [])
        assert.ok(
          spec.volumes?.some((w) => w.name === v.name),
          `${where}: ${v.name}`,
        );
    }
  }
  assert.deepEqual([...roles].sort(), ['coordinator', 'trainer']);
  // Trainers never get the coordinator's private key.
  for (const job of byKind(all, 'Job'))
    for (const v of podOf(job).spec.volumes ?? [])
      if (v.secret?.secretName === 'dann-tls')
        assert.deepEqual(
          v.secret.items?.map((i) => i.key),
          ['tls.crt'],
        );
});

test("trainers reach the coordinator through its Service over TLS, and the status page is the coordinator's probe", () => {
  const all = manifests();
  const [deployment] = byKind(all, 'Deployment');
  const [service] = byKind(all, 'Service');
  const pod = podOf(deployment);
  const coordinator = pod.spec.containers[0];
  const f = flags(coordinator);
  const selector = (service.spec as { selector: Record<string, string> }).selector;
  for (const [k, v] of Object.entries(selector)) assert.equal(pod.metadata.labels[k], v, `Service selects ${k}=${v}`);
  const port = (service.spec as { ports: { port: number; targetPort: string }[] }).ports[0];
  const containerPort = coordinator.ports?.find((p) => p.name === port.targetPort);
  assert.equal(String(containerPort?.containerPort), f.get('--port'));
  assert.equal(f.get('--host'), '0.0.0.0');
  assert.ok(f.has('--tls-cert') && f.has('--tls-key') && f.has('--token-file') && !f.has('--insecure'));
  for (const probe of [coordinator.readinessProbe, coordinator.startupProbe]) {
    assert.equal(probe?.httpGet?.path, '/status');
    assert.equal(probe?.httpGet?.scheme, 'HTTPS');
    assert.equal(probe?.httpGet?.port, port.targetPort);
  }
  for (const job of byKind(all, 'Job')) {
    const trainer = flags(podOf(job).spec.containers[0]);
    assert.equal(trainer.get('--coordinator'), `wss://${service.metadata.name}:${port.port}`);
    assert.ok(trainer.has('--ca') && trainer.has('--token-file'));
    const gpus = podOf(job).spec.containers[0].resources?.limits?.['nvidia.com/gpu'];
    assert.equal(String(gpus), '1', 'one GPU per trainer');
  }
});

test('the image runs deploy/entrypoint.sh, leaves local data out, and the entry point refuses unknown roles', () => {
  const dockerfile = readFileSync(join(DEPLOY, 'Dockerfile'), 'utf8');
  assert.match(dockerfile, /^ENTRYPOINT \["\/app\/deploy\/entrypoint\.sh"\]$/m);
  assert.match(dockerfile, /^RUN npm ci/m);
  const ignored = readFileSync(join(ROOT, '.dockerignore'), 'utf8').split('\n');
  for (const path of ['node_modules', 'data', 'runs', '.git']) assert.ok(ignored.includes(path), path);
  const r = spawnSync('sh', [ENTRYPOINT, 'relay'], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(r.status, 2);
  assert.equal(
    r.stderr,
    "usage: deploy/entrypoint.sh coordinator|trainer [options] (--usage lists each one's options)\n",
  );
});

test('a coordinator pod whose run has finished says so in one line and starts no new run', {
  timeout: 30_000,
}, async () => {
  const out = mkdtempSync(join(tmpdir(), 'dann-deploy-'));
  try {
    writeFileSync(join(out, 'accounting.json'), '{}\n');
    const child = spawn('sh', [ENTRYPOINT, 'coordinator', '--port', '0'], {
      cwd: ROOT,
      env: { ...process.env, DANN_OUT: out },
    });
    let stderr = '';
    await new Promise<void>((resolve) =>
      child.stderr.on('data', (d) => {
        stderr += d;
        if (stderr.includes('\n')) resolve();
      }),
    );
    child.kill();
    assert.equal(
      stderr,
      `the run in ${out} has finished (its model: ${out}/model.onnx); to train again, point DANN_OUT at a new folder.\n`,
    );
    assert.deepEqual(readdirSync(out), ['accounting.json'], 'nothing written');
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
