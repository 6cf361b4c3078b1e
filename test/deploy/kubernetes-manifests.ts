/**
 * Static checks of the Kubernetes manifests in deploy/kubernetes, without a cluster:
 *
 * 1. Schema: each document is validated against the Kubernetes OpenAPI schema of its
 *    apiVersion and kind, through kubernetes-models (validators generated from Kubernetes'
 *    OpenAPI description and compiled with ajv). An apiVersion or kind Kubernetes does not have
 *    is a problem. Unknown fields are not: the OpenAPI schemas allow them, so the project's own
 *    rules below require the fields that matter (a misspelt `livenessProbe` is a missing probe).
 * 2. The project's rules: every container of a Deployment has readiness and liveness probes and
 *    CPU and memory requests and limits; task-mgmt's own containers run as non-root and probe
 *    /healthz; Services, selectors and references to Secrets and ConfigMaps point at something
 *    defined here; no Secret holds a real private key (the folder holds a template).
 */
import { readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';

export interface ManifestDocument {
  /** `<file>#<index>` for messages. */
  readonly where: string;
  readonly value: Record<string, unknown>;
}

type Json = Record<string, any>;

const modelsPackage = createRequire(import.meta.url)('kubernetes-models/package.json') as { exports: unknown; version: string };

/** Reads every YAML document of every .yaml file in `dir`; a YAML error is a problem too. */
export function readManifests(dir: string): { documents: ManifestDocument[]; problems: string[] } {
  const documents: ManifestDocument[] = [];
  const problems: string[] = [];
  for (const file of readdirSync(dir).filter((name) => name.endsWith('.yaml')).sort()) {
    parseAllDocuments(readFileSync(join(dir, file), 'utf8')).forEach((doc, index) => {
      const where = `${file}#${index + 1}`;
      if (doc.errors.length > 0) {
        problems.push(`${where}: not valid YAML: ${doc.errors[0]!.message.split('\n')[0]}`);
        return;
      }
      const value: unknown = doc.toJS();
      if (value === null || value === undefined) return;
      if (typeof value !== 'object' || Array.isArray(value)) {
        problems.push(`${where}: not a Kubernetes object`);
        return;
      }
      documents.push({ where, value: value as Record<string, unknown> });
    });
  }
  return { documents, problems };
}

/** All problems of a set of manifests; empty when they pass. */
export async function checkManifests(documents: readonly ManifestDocument[]): Promise<string[]> {
  const problems: string[] = [];
  for (const doc of documents) problems.push(...(await schemaProblems(doc)));
  problems.push(...ruleProblems(documents));
  return problems;
}

interface ValidatingModel {
  validate(): void;
}
type ModelClass = new (data: unknown) => ValidatingModel;

async function schemaProblems({ where, value }: ManifestDocument): Promise<string[]> {
  const { apiVersion, kind } = value as Json;
  if (typeof apiVersion !== 'string' || typeof kind !== 'string') return [`${where}: apiVersion and kind must be strings`];
  const name = `${apiVersion} ${kind}`;
  // Validated before they become a module path: core is `v1`, groups are `<group>/<version>`.
  if (!/^([a-z0-9.-]+\/)?v[0-9]+((alpha|beta)[0-9]+)?$/.test(apiVersion) || !/^[A-Z][A-Za-z0-9]*$/.test(kind)) {
    return [`${where}: ${name} is not an apiVersion and kind of the Kubernetes API`];
  }
  // The package exports one module per apiVersion; an apiVersion it lacks, Kubernetes lacks.
  const exported = (modelsPackage.exports as Record<string, unknown>)[`./${apiVersion}`] !== undefined;
  const module = exported ? ((await import(`kubernetes-models/${apiVersion}`)) as Record<string, unknown>) : {};
  const candidate = module[kind] as (ModelClass & { kind?: unknown; apiVersion?: unknown }) | undefined;
  // Only top-level resources carry their own kind and apiVersion (DeploymentSpec is no manifest).
  const Model = candidate?.kind === kind && candidate.apiVersion === apiVersion ? candidate : undefined;
  if (!Model) return [`${where}: ${name} is not an apiVersion and kind of the Kubernetes API`];
  try {
    new Model(value).validate();
    return [];
  } catch (error) {
    const errors = (error as { errors?: { instancePath?: string; message?: string }[] }).errors;
    if (!errors) throw error;
    // A oneOf repeats its alternatives' failures; one line per field is enough to act on.
    const byPath = new Map<string, string>();
    for (const e of errors) if (!byPath.has(e.instancePath ?? '')) byPath.set(e.instancePath ?? '', e.message ?? 'invalid');
    return [...byPath].map(([path, message]) => `${where}: ${name} ${path || '/'} ${message}`);
  }
}

function ruleProblems(documents: readonly ManifestDocument[]): string[] {
  const problems: string[] = [];
  const named = (kind: string) =>
    new Map(documents.filter((d) => d.value.kind === kind).map((d) => [(d.value as Json).metadata?.name as string, d.value as Json]));
  const secrets = named('Secret');
  const configMaps = named('ConfigMap');
  const claims = named('PersistentVolumeClaim');
  const deployments = documents.filter((d) => d.value.kind === 'Deployment');

  for (const { where, value } of documents) {
    if (value.kind === 'Secret') problems.push(...secretProblems(where, value as Json));
  }

  for (const { where, value } of deployments) {
    const deployment = value as Json;
    const name = `${where}: Deployment ${deployment.metadata?.name}`;
    const pod = deployment.spec?.template?.spec ?? {};
    const templateLabels: Json = deployment.spec?.template?.metadata?.labels ?? {};
    for (const [key, label] of Object.entries<string>(deployment.spec?.selector?.matchLabels ?? {})) {
      if (templateLabels[key] !== label) problems.push(`${name}: selector ${key}=${label} does not match the pod template's labels`);
    }
    // Native sidecars (restartPolicy Always) run beside the containers; one-shot init containers end.
    const sidecars = ((pod.initContainers ?? []) as Json[]).filter((c) => c.restartPolicy === 'Always');
    for (const container of [...((pod.containers ?? []) as Json[]), ...sidecars]) {
      const where = `${name} container ${container.name}`;
      for (const probe of ['readinessProbe', 'livenessProbe']) {
        if (!container[probe]) problems.push(`${where} has no ${probe}`);
      }
      for (const bound of ['requests', 'limits']) {
        for (const resource of ['cpu', 'memory']) {
          if (container.resources?.[bound]?.[resource] === undefined) problems.push(`${where} has no ${resource} in resources.${bound}`);
        }
      }
      if (String(container.image ?? '').startsWith('task-mgmt')) problems.push(...taskMgmtContainerProblems(where, container, pod));
      for (const source of (container.envFrom ?? []) as Json[]) {
        if (source.configMapRef && !configMaps.has(source.configMapRef.name)) problems.push(`${where}: envFrom names ConfigMap ${source.configMapRef.name}, not defined here`);
        if (source.secretRef && !secrets.has(source.secretRef.name)) problems.push(`${where}: envFrom names Secret ${source.secretRef.name}, not defined here`);
      }
      for (const variable of (container.env ?? []) as Json[]) {
        const ref = variable.valueFrom?.secretKeyRef ?? variable.valueFrom?.configMapKeyRef;
        if (!ref) continue;
        const holder = variable.valueFrom.secretKeyRef ? secrets.get(ref.name) : configMaps.get(ref.name);
        if (!holder || !hasKey(holder, ref.key)) problems.push(`${where}: ${variable.name} reads ${ref.name}/${ref.key}, not defined here`);
      }
    }
    for (const volume of (pod.volumes ?? []) as Json[]) {
      if (volume.secret) {
        const secret = secrets.get(volume.secret.secretName);
        for (const item of (volume.secret.items ?? [{ key: undefined }]) as Json[]) {
          if (!secret || (item.key !== undefined && !hasKey(secret, item.key))) problems.push(`${name}: volume ${volume.name} reads Secret ${volume.secret.secretName}${item.key ? `/${item.key}` : ''}, not defined here`);
        }
      }
      if (volume.persistentVolumeClaim && !claims.has(volume.persistentVolumeClaim.claimName)) {
        problems.push(`${name}: volume ${volume.name} names PersistentVolumeClaim ${volume.persistentVolumeClaim.claimName}, not defined here`);
      }
    }
  }

  for (const { where, value } of documents.filter((d) => d.value.kind === 'Service')) {
    const service = value as Json;
    const selector: Json = service.spec?.selector ?? {};
    const target = deployments.find((d) => {
      const labels: Json = (d.value as Json).spec?.template?.metadata?.labels ?? {};
      return Object.keys(selector).length > 0 && Object.entries(selector).every(([key, label]) => labels[key] === label);
    });
    if (!target) {
      problems.push(`${where}: Service ${service.metadata?.name} selects no Deployment's pods`);
      continue;
    }
    const ports = (((target.value as Json).spec.template.spec.containers ?? []) as Json[]).flatMap((c) => (c.ports ?? []) as Json[]);
    for (const port of (service.spec?.ports ?? []) as Json[]) {
      const targetPort = port.targetPort ?? port.port;
      if (!ports.some((p) => p.name === targetPort || p.containerPort === targetPort)) {
        problems.push(`${where}: Service ${service.metadata?.name} port ${port.name ?? port.port} targets ${targetPort}, which no container of ${target.where} exposes`);
      }
    }
  }
  return problems;
}

/** task-mgmt's image: non-root, and probes on /healthz at the port the subcommand serves it on. */
function taskMgmtContainerProblems(where: string, container: Json, pod: Json): string[] {
  const problems: string[] = [];
  const runAsNonRoot = container.securityContext?.runAsNonRoot ?? pod.securityContext?.runAsNonRoot;
  if (runAsNonRoot !== true) problems.push(`${where} does not set runAsNonRoot: true`);
  const subcommand = (container.args ?? container.command ?? ['serve'])[0];
  const expectedPort = subcommand === 'worker' ? 9464 : 3000;
  const portNumber = (port: unknown) =>
    typeof port === 'number' ? port : ((container.ports ?? []) as Json[]).find((p) => p.name === port)?.containerPort;
  for (const probe of ['readinessProbe', 'livenessProbe']) {
    const get = container[probe]?.httpGet;
    if (!container[probe]) continue;
    if (get?.path !== '/healthz' || portNumber(get?.port) !== expectedPort) {
      problems.push(`${where}: ${probe} must be GET /healthz on port ${expectedPort} (task-mgmt ${subcommand})`);
    }
  }
  return problems;
}

/** A template must not carry a real key: PEM blocks in `stringData` or base64 `data`. */
function secretProblems(where: string, secret: Json): string[] {
  const values = [
    ...Object.entries<string>(secret.stringData ?? {}),
    ...Object.entries<string>(secret.data ?? {}).map(([key, value]) => [key, Buffer.from(String(value), 'base64').toString('utf8')] as const),
  ];
  return values
    .filter(([, value]) => /-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(String(value)))
    .map(([key]) => `${where}: Secret ${secret.metadata?.name} holds a real private key in ${key}; keep a placeholder and create the Secret outside git`);
}

function hasKey(holder: Json, key: string): boolean {
  return Object.hasOwn(holder.data ?? {}, key) || Object.hasOwn(holder.stringData ?? {}, key);
}
