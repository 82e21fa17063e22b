/**
 * examples/container: no container engine runs here, so the Dockerfile is checked by
 * reading its instructions (the entry point, STOPSIGNAL, HEALTHCHECK, USER, what it copies
 * and installs) against the project itself: the corral commands it runs are registered,
 * the settings it sets exist, the signal is one the master handles. The Kubernetes
 * manifests are validated against the Kubernetes schemas (kubernetes-models) and checked
 * for consistency with the image and corral's settings: probes on the metrics listener,
 * the grace period above shutdown-delay + graceful-timeout, the Service's target port.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { parseBind } from '../../src/listeners/bind-spec.js';
import { envName, SETTINGS, SETTING_NAMES, type SettingName } from '../../src/config/settings.js';
import { footprint } from '../../src/config/memory.js';
import { HANDLED_SIGNALS } from '../../src/master/signals.js';
import { CLI, ROOT } from '../helpers/paths.js';

const DIR = join(ROOT, 'examples/container');
const MARGIN_S = 5;

interface Instruction {
  name: string;
  /** The text after the instruction's name, continuation lines joined. */
  args: string;
  /** The exec (JSON array) form, when used. */
  exec?: string[];
}

/** Dockerfile instructions: comments and blank lines dropped, `\` continuations joined. */
function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  let pending = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!pending && (line === '' || line.startsWith('#'))) continue;
    if (pending && line.startsWith('#')) continue;
    if (line.endsWith('\\')) {
      pending += line.slice(0, -1) + ' ';
      continue;
    }
    const full = (pending + line).trim();
    pending = '';
    const m = /^(\w+)\s+(.*)$/s.exec(full);
    assert.ok(m, `not an instruction: ${full}`);
    const args = m[2]!.trim();
    let exec: string[] | undefined;
    const json = /(\[.*\])\s*$/.exec(args);
    if (json) {
      try {
        exec = JSON.parse(json[1]!) as string[];
      } catch {
        exec = undefined;
      }
    }
    out.push({ name: m[1]!.toUpperCase(), args, exec });
  }
  return out;
}

const dockerfile = parseDockerfile(readFileSync(join(DIR, 'Dockerfile'), 'utf8'));
const all = (name: string) => dockerfile.filter((i) => i.name === name);
const one = (name: string): Instruction => {
  const found = all(name);
  assert.equal(found.length, 1, `exactly one ${name} (found ${found.length})`);
  return found[0]!;
};

/** ENV instructions of the image: KEY=VALUE pairs. */
function imageEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const i of all('ENV')) {
    for (const m of i.args.matchAll(/(\w+)=("[^"]*"|\S+)/g)) env[m[1]!] = m[2]!.replace(/^"|"$/g, '');
  }
  return env;
}

/** The subcommands `corral --help` lists. */
function registeredCommands(): Set<string> {
  const r = spawnSync(process.execPath, [CLI, '--help'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const section = r.stdout.split(/^Commands:$/m)[1] ?? '';
  return new Set([...section.matchAll(/^ {2}([a-z][\w-]*)/gm)].map((m) => m[1]!));
}

/** The setting that environment variable `key` sets, if any. */
function settingOfEnv(key: string): SettingName | undefined {
  return SETTING_NAMES.find((n) => envName(n) === key);
}

const bindPort = (value: string): number => {
  const spec = parseBind(value);
  assert.equal(spec.kind, 'tcp', `${value}: a TCP address`);
  return (spec as { port: number }).port;
};

describe('examples/container/Dockerfile', () => {
  test('a Debian-based Node image of a version corral supports, with tini installed from Debian', () => {
    const from = one('FROM').args;
    const m = /^node:(\d+)-bookworm(-slim)?$/.exec(from);
    assert.ok(m, `FROM ${from}: a Debian (bookworm) Node image`);
    const engines = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { engines: { node: string } }).engines.node;
    assert.ok(Number(m[1]) >= Number(/\d+/.exec(engines)![0]), `node ${m[1]} satisfies engines ${engines}`);
    assert.ok(all('RUN').some((i) => /apt-get install\b.*\btini\b/.test(i.args)), 'tini comes from apt-get install');
  });

  test('corral is installed from the npm pack tarball, globally, without the optional sd-notify addon', () => {
    const install = all('RUN').find((i) => /npm install -g\b/.test(i.args));
    assert.ok(install, 'an `npm install -g` of corral');
    assert.match(install.args, /--omit=optional/);
    const tarball = /\s(\/\S+\.tgz)/.exec(install.args)?.[1];
    assert.ok(tarball, 'installs a tarball');
    assert.ok(all('COPY').some((c) => c.args.split(/\s+/).at(-1) === tarball), `${tarball} is copied into the image`);
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string>; optionalDependencies: Record<string, string>; dependencies: Record<string, string> };
    assert.ok(pkg.bin.corral, 'the package installs a `corral` command');
    assert.ok('sd-notify' in pkg.optionalDependencies && !('sd-notify' in pkg.dependencies), 'sd-notify is optional, so --omit=optional leaves it out');
  });

  test('tini is the entry point and corral its child, in exec form; CMD runs a registered command on an app that exists', () => {
    assert.deepEqual(one('ENTRYPOINT').exec, ['tini', '--', 'corral']);
    const cmd = one('CMD').exec;
    assert.ok(cmd, 'CMD in exec form');
    assert.ok(registeredCommands().has(cmd[0]!), `corral ${cmd[0]} is a registered command`);
    assert.ok(existsSync(join(DIR, cmd.at(-1)!)), `the app ${cmd.at(-1)} is in examples/container`);
  });

  test('STOPSIGNAL is SIGTERM, a signal the master drains on', () => {
    const sig = one('STOPSIGNAL').args;
    assert.equal(sig, 'SIGTERM');
    assert.ok((HANDLED_SIGNALS as readonly string[]).includes(sig));
  });

  test('HEALTHCHECK runs `corral health`, a registered command, against the metrics listener of the image\'s environment', () => {
    const hc = one('HEALTHCHECK');
    assert.deepEqual(hc.exec, ['corral', 'health']);
    assert.match(hc.args, /--start-period=(\d+)s/);
    const start = Number(/--start-period=(\d+)s/.exec(hc.args)![1]);
    assert.ok(start >= (SETTINGS.bootTimeout.default as number), `start period ${start} s covers boot-timeout`);
    assert.ok(registeredCommands().has('health'), 'corral health is registered (src/cli.ts)');
    assert.ok(imageEnv().CORRAL_METRICS_BIND, 'CORRAL_METRICS_BIND tells `corral health` where to ask');
  });

  test('USER is not root', () => {
    const user = one('USER').args;
    assert.ok(!/^(root|0)(:|$)/.test(user), `USER ${user}`);
    const last = dockerfile.map((i) => i.name).lastIndexOf('USER');
    assert.ok(last > dockerfile.map((i) => i.name).lastIndexOf('RUN'), 'no RUN after USER: the image runs as that user');
  });

  test('every CORRAL_ variable is a setting with a valid value, and EXPOSE matches the binds', () => {
    const env = imageEnv();
    for (const [k, v] of Object.entries(env).filter(([k]) => k.startsWith('CORRAL_'))) {
      const name = settingOfEnv(k);
      assert.ok(name, `${k} is the variable of a setting`);
      assert.doesNotThrow(() => SETTINGS[name].type.parse(v), `${k}=${v} is valid`);
    }
    const exposed = one('EXPOSE').args.split(/\s+/).map(Number).sort();
    assert.deepEqual(exposed, [bindPort(env.CORRAL_BIND!), bindPort(env.CORRAL_METRICS_BIND!)].sort());
  });

  test('what it copies exists and .dockerignore lets exactly that into the build context', () => {
    const ignore = readFileSync(join(DIR, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
    assert.equal(ignore[0], '*', 'an allow list: everything else stays out (.env, node_modules, the manifests)');
    const allowed = new Set(ignore.slice(1).map((l) => l.replace(/^!/, '')));
    const copied = all('COPY').flatMap((c) => c.args.split(/\s+/).filter((a) => !a.startsWith('--')).slice(0, -1));
    assert.deepEqual([...allowed].sort(), [...new Set(copied)].sort());
    for (const f of copied) {
      if (f === 'corral.tgz') continue; // made by npm pack, as the Dockerfile's header says
      assert.ok(existsSync(join(DIR, f)), `${f} exists`);
    }
    assert.match(readFileSync(join(DIR, '.gitignore'), 'utf8'), /^corral\.tgz$/m);
  });
});

// ---- Kubernetes ----

interface YamlModule {
  parseAllDocuments(text: string): Array<{ errors: unknown[]; toJS(): unknown }>;
}
interface Validatable {
  validate(): void;
}
type ModelClass = new (data: unknown) => Validatable;

/** A module by a name tsc does not resolve: a devDependency is checked at run time. */
async function load<T>(name: string): Promise<T> {
  try {
    return (await import(name)) as T;
  } catch (err) {
    throw new Error(`${name} is missing: it is a devDependency of these tests (npm install -D kubernetes-models@4.5.1 yaml@^2): ${(err as Error).message}`);
  }
}

interface Probe {
  httpGet: { path: string; port: string | number };
  periodSeconds: number;
  failureThreshold: number;
}
interface Container {
  name: string;
  env?: Array<{ name: string; value?: string }>;
  ports: Array<{ name?: string; containerPort: number }>;
  startupProbe: Probe;
  readinessProbe: Probe;
  livenessProbe: Probe;
  lifecycle?: { preStop?: unknown };
  resources: { limits: { cpu: string; memory: string } };
}
interface Deployment {
  kind: 'Deployment';
  spec: {
    selector: { matchLabels: Record<string, string> };
    template: { metadata: { labels: Record<string, string> }; spec: { terminationGracePeriodSeconds: number; containers: Container[] } };
  };
}
interface Service {
  kind: 'Service';
  spec: { selector: Record<string, string>; ports: Array<{ name?: string; port: number; targetPort: string | number }> };
}

const quantityBytes = (q: string): number => {
  const m = /^(\d+)(Ki|Mi|Gi)?$/.exec(q);
  assert.ok(m, `memory quantity ${q}`);
  return Number(m[1]) * ({ Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3 }[m[2] as 'Ki'] ?? 1);
};
const quantityCpus = (q: string): number => (q.endsWith('m') ? Number(q.slice(0, -1)) / 1000 : Number(q));

describe('examples/container/kubernetes.yaml', () => {
  let deployment: Deployment;
  let service: Service;
  let container: Container;
  /** The container's environment: the image's ENV, then the manifest's. */
  let env: Record<string, string>;
  let docs: Array<{ kind: string; apiVersion: string }>;

  before(async () => {
    const yaml = await load<YamlModule>('yaml');
    const parsed = yaml.parseAllDocuments(readFileSync(join(DIR, 'kubernetes.yaml'), 'utf8'));
    for (const d of parsed) assert.deepEqual(d.errors, [], 'the YAML parses');
    docs = parsed.map((d) => d.toJS() as { kind: string; apiVersion: string });
    deployment = docs.find((d) => d.kind === 'Deployment') as unknown as Deployment;
    service = docs.find((d) => d.kind === 'Service') as unknown as Service;
    assert.ok(deployment && service, 'a Deployment and a Service');
    assert.equal(deployment.spec.template.spec.containers.length, 1);
    container = deployment.spec.template.spec.containers[0]!;
    env = { ...imageEnv() };
    for (const e of container.env ?? []) env[e.name] = e.value ?? '';
  });

  test('every document is valid against the Kubernetes schemas', async () => {
    const models: Record<string, string> = { 'apps/v1 Deployment': 'kubernetes-models/apps/v1/Deployment', 'v1 Service': 'kubernetes-models/v1/Service' };
    for (const doc of docs) {
      const path = models[`${doc.apiVersion} ${doc.kind}`];
      assert.ok(path, `a model for ${doc.apiVersion} ${doc.kind}`);
      const mod = await load<Record<string, ModelClass>>(path);
      assert.doesNotThrow(() => new mod[doc.kind]!(doc).validate(), `${doc.kind} is valid`);
    }
    // The validator is not a rubber stamp.
    const mod = await load<Record<string, ModelClass>>(models['apps/v1 Deployment']!);
    const broken = structuredClone(deployment) as unknown as { spec: { template: { spec: { containers: Array<{ ports: Array<{ containerPort: unknown }> }> } } } };
    broken.spec.template.spec.containers[0]!.ports[0]!.containerPort = 'eight thousand';
    assert.throws(() => new mod.Deployment!(broken).validate());
  });

  test('every CORRAL_ variable of the container is a setting with a valid value', () => {
    for (const [k, v] of Object.entries(env).filter(([k]) => k.startsWith('CORRAL_'))) {
      const name = settingOfEnv(k);
      assert.ok(name, `${k} is the variable of a setting`);
      assert.doesNotThrow(() => SETTINGS[name].type.parse(v), `${k}=${v} is valid`);
    }
  });

  test('the probes ask the metrics listener of CORRAL_METRICS_BIND: readiness /readyz, liveness /livez, startup /readyz', () => {
    const bind = parseBind(env.CORRAL_METRICS_BIND!);
    assert.equal(bind.kind, 'tcp');
    const { host, port } = bind as { host: string; port: number };
    assert.ok(!['127.0.0.1', 'localhost', '::1'].includes(host), `metrics-bind ${host}: the kubelet probes the pod's IP, not loopback`);
    const portOf = (p: string | number) => (typeof p === 'number' ? p : container.ports.find((x) => x.name === p)?.containerPort);
    const paths = { readinessProbe: '/readyz', livenessProbe: '/livez', startupProbe: '/readyz' } as const;
    for (const [probe, path] of Object.entries(paths) as Array<[keyof typeof paths, string]>) {
      const get = container[probe].httpGet;
      assert.equal(get.path, path, `${probe} path`);
      assert.equal(portOf(get.port), port, `${probe} port ${String(get.port)} is metrics-bind's ${port}`);
    }
    assert.ok(container.ports.some((p) => p.containerPort === bindPort(env.CORRAL_BIND!)), 'the app port is declared');
  });

  test('the startup probe waits at least boot-timeout; the readiness probe sees the 503 within shutdown-delay', () => {
    const s = container.startupProbe;
    const bootTimeout = env.CORRAL_BOOT_TIMEOUT ? Number(env.CORRAL_BOOT_TIMEOUT) : (SETTINGS.bootTimeout.default as number);
    assert.ok(s.periodSeconds * s.failureThreshold >= bootTimeout, `startup ${s.periodSeconds} × ${s.failureThreshold} s ≥ boot-timeout ${bootTimeout} s`);
    const r = container.readinessProbe;
    const delay = Number(env.CORRAL_SHUTDOWN_DELAY);
    assert.ok(delay > 0, 'shutdown-delay is set');
    assert.ok(r.periodSeconds * r.failureThreshold <= delay, `readiness ${r.periodSeconds} × ${r.failureThreshold} s ≤ shutdown-delay ${delay} s`);
  });

  test('terminationGracePeriodSeconds ≥ shutdown-delay + graceful-timeout + a margin; no preStop hook', () => {
    const grace = deployment.spec.template.spec.terminationGracePeriodSeconds;
    const delay = Number(env.CORRAL_SHUTDOWN_DELAY);
    const graceful = env.CORRAL_GRACEFUL_TIMEOUT ? Number(env.CORRAL_GRACEFUL_TIMEOUT) : (SETTINGS.gracefulTimeout.default as number);
    assert.ok(grace >= delay + graceful + MARGIN_S, `grace ${grace} s ≥ ${delay} + ${graceful} + ${MARGIN_S} s`);
    assert.equal(container.lifecycle?.preStop, undefined, 'shutdown-delay does what a preStop sleep would');
  });

  test('stop-budget is the grace period, so corral itself warns when the two drift apart', () => {
    assert.equal(Number(env.CORRAL_STOP_BUDGET), deployment.spec.template.spec.terminationGracePeriodSeconds);
  });

  test('the limits: the CPU limit gives the worker count, and the memory limit holds it, even through a reload', () => {
    const { cpu, memory } = container.resources.limits;
    assert.ok(!env.CORRAL_WORKERS, 'the worker count is left to the CPU limit');
    const workers = Math.max(1, Math.ceil(quantityCpus(cpu)));
    const f = footprint(workers, 0);
    assert.ok(quantityBytes(memory) >= f.total + workers * f.perWorker, `${memory} holds ${workers} workers twice (a reload) and the master`);
  });

  test('the Service selects the pods and targets the app port', () => {
    assert.deepEqual(service.spec.selector, deployment.spec.selector.matchLabels);
    for (const [k, v] of Object.entries(deployment.spec.selector.matchLabels)) assert.equal(deployment.spec.template.metadata.labels[k], v);
    assert.equal(service.spec.ports.length, 1);
    const target = service.spec.ports[0]!.targetPort;
    const port = typeof target === 'number' ? target : container.ports.find((p) => p.name === target)?.containerPort;
    assert.equal(port, bindPort(env.CORRAL_BIND!), `targetPort ${String(target)} is the container's app port`);
  });
});
