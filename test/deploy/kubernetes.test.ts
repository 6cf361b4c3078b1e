/**
 * deploy/kubernetes passes the static checks (Kubernetes' OpenAPI schemas through
 * kubernetes-models and ajv, and the project's rules), and each check catches the mistake it is
 * there for, so it cannot pass by checking nothing.
 */
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { checkManifests, readManifests, type ManifestDocument } from './kubernetes-manifests.js';

const dir = fileURLToPath(new URL('../../deploy/kubernetes/', import.meta.url));
const manifests = readManifests(dir);

type Json = Record<string, any>;

/** The manifests with one document changed: the first of `kind` named `name`. */
function withChange(kind: string, name: string, change: (doc: Json) => void): ManifestDocument[] {
  let changed = false;
  const documents = manifests.documents.map((doc) => {
    const value = structuredClone(doc.value) as Json;
    if (!changed && value.kind === kind && value.metadata?.name === name) {
      change(value);
      changed = true;
    }
    return { where: doc.where, value };
  });
  if (!changed) throw new Error(`no ${kind} ${name} in deploy/kubernetes`);
  return documents;
}

const app = (doc: Json) => doc.spec.template.spec.containers[0] as Json;
const worker = app;

describe('deploy/kubernetes', () => {
  it('passes every check', async () => {
    expect(manifests.problems).toEqual([]);
    expect(await checkManifests(manifests.documents)).toEqual([]);
  });

  it('has the app Deployment and Service, the worker Deployment and the Secret for the App key', () => {
    const names = manifests.documents.map((d) => `${d.value.kind}/${(d.value as Json).metadata.name}`);
    expect(names).toEqual(
      expect.arrayContaining(['Deployment/task-mgmt-app', 'Service/task-mgmt', 'Deployment/task-mgmt-worker', 'Secret/task-mgmt']),
    );
  });

  const broken: [string, ManifestDocument[], RegExp][] = [
    ['a wrong apiVersion', withChange('Deployment', 'task-mgmt-app', (d) => (d.apiVersion = 'apps/v2')), /apps\/v2 Deployment is not an apiVersion and kind/],
    ['a kind Kubernetes lacks', withChange('Service', 'task-mgmt', (d) => (d.kind = 'Servise')), /v1 Servise is not an apiVersion and kind/],
    ['a port given as text', withChange('Deployment', 'task-mgmt-app', (d) => (app(d).ports[0].containerPort = 'three thousand')), /containerPort must be integer/],
    ['a quantity that is none', withChange('Deployment', 'task-mgmt-worker', (d) => (worker(d).resources.limits.memory = 'lots')), /limits\/memory must/],
    ['a pod template without containers', withChange('Deployment', 'task-mgmt-app', (d) => delete d.spec.template.spec.containers), /spec\/template\/spec must have required property containers/],
    ['the app without a readiness probe', withChange('Deployment', 'task-mgmt-app', (d) => delete app(d).readinessProbe), /container app has no readinessProbe/],
    ['a misspelt liveness probe', withChange('Deployment', 'task-mgmt-worker', (d) => {
      worker(d).livenesProbe = worker(d).livenessProbe;
      delete worker(d).livenessProbe;
    }), /container worker has no livenessProbe/],
    ['the Docker sidecar without a liveness probe', withChange('Deployment', 'task-mgmt-worker', (d) => delete d.spec.template.spec.initContainers[0].livenessProbe), /container docker has no livenessProbe/],
    ['no memory limit', withChange('Deployment', 'task-mgmt-app', (d) => delete app(d).resources.limits.memory), /has no memory in resources.limits/],
    ['the worker probed on the app port', withChange('Deployment', 'task-mgmt-worker', (d) => (worker(d).livenessProbe.httpGet.port = 3000)), /livenessProbe must be GET \/healthz on port 9464/],
    ['the app running as root', withChange('Deployment', 'task-mgmt-app', (d) => delete d.spec.template.spec.securityContext.runAsNonRoot), /does not set runAsNonRoot/],
    ['a real key in the Secret', withChange('Secret', 'task-mgmt', (d) => (d.stringData['private-key.pem'] = '-----BEGIN RSA PRIVATE KEY-----\nMIIE…\n-----END RSA PRIVATE KEY-----\n')), /holds a real private key in private-key.pem/],
    ['a Secret key nobody defined', withChange('Deployment', 'task-mgmt-app', (d) => (app(d).env.find((e: Json) => e.name === 'DATABASE_URL').valueFrom.secretKeyRef.key = 'DB_URL')), /DATABASE_URL reads task-mgmt\/DB_URL, not defined here/],
    ['a selector that misses the pods', withChange('Deployment', 'task-mgmt-worker', (d) => (d.spec.selector.matchLabels['app.kubernetes.io/component'] = 'app')), /selector app.kubernetes.io\/component=app does not match/],
    ['a Service that selects nothing', withChange('Service', 'task-mgmt', (d) => (d.spec.selector['app.kubernetes.io/component'] = 'web')), /Service task-mgmt selects no Deployment's pods/],
    ['a Service port to nowhere', withChange('Service', 'task-mgmt', (d) => (d.spec.ports[0].targetPort = 'web')), /targets web, which no container/],
  ];

  it.each(broken)('refuses %s', async (_name, documents, problem) => {
    const problems = await checkManifests(documents);
    expect(problems).toEqual(expect.arrayContaining([expect.stringMatching(problem)]));
  });

  it('refuses a file that is not valid YAML', async () => {
    const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const scratch = mkdtempSync(join(tmpdir(), 'task-mgmt-manifests-'));
    try {
      writeFileSync(join(scratch, 'broken.yaml'), 'apiVersion: v1\nkind: Service\n  metadata: [\n');
      expect(readManifests(scratch).problems).toEqual([expect.stringMatching(/^broken.yaml#1: not valid YAML/)]);
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  });
});
