import { Ajv, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { loadGitHubOpenApi, type OpenApiDocument } from './openapi-spec.js';

// ajv-formats is CommonJS; under NodeNext its default export arrives wrapped.
const addFormats = ((addFormatsModule as unknown as { default?: typeof addFormatsModule }).default ?? addFormatsModule) as unknown as (ajv: Ajv) => Ajv;

export interface OpenApiViolation {
  operation: string;
  method: string;
  path: string;
  error: string;
}

interface CompiledOperation {
  operationId: string;
  method: string;
  template: string;
  pattern: RegExp;
  bodyRequired: boolean;
  validate?: ValidateFunction;
}

/**
 * Checks the requests the app sends against GitHub's OpenAPI description, so a body GitHub
 * would reject (or an unknown field it would ignore silently) fails the test instead.
 */
export class OpenApiValidator {
  private operations: CompiledOperation[] = [];

  private constructor() {}

  /** Compiles only the operations the fake serves; `served` lists "METHOD /path/{template}". */
  static async create(served: string[]): Promise<OpenApiValidator> {
    const spec = await loadGitHubOpenApi();
    const validator = new OpenApiValidator();
    const ajv = new Ajv({ strict: false, allErrors: true, discriminator: false });
    addFormats(ajv);
    for (const entry of served) {
      const [method = '', template = ''] = entry.split(' ');
      validator.operations.push(compile(ajv, spec, method.toLowerCase(), template));
    }
    return validator;
  }

  /** Finds the operation for a request path (without the /api/v3 prefix). */
  match(method: string, path: string): CompiledOperation | undefined {
    const m = method.toLowerCase();
    return this.operations.find((op) => op.method === m && op.pattern.test(path));
  }

  check(method: string, path: string, body: unknown, hasBody: boolean): OpenApiViolation[] {
    const op = this.match(method, path);
    if (!op) return [];
    const base = { operation: op.operationId, method: method.toUpperCase(), path };
    if (!hasBody) {
      return op.bodyRequired ? [{ ...base, error: 'request body is required' }] : [];
    }
    if (!op.validate) return [{ ...base, error: 'operation takes no request body' }];
    if (op.validate(body)) return [];
    return (op.validate.errors ?? []).map((e) => ({
      ...base,
      error: `${e.instancePath || '(body)'} ${e.message ?? 'is invalid'}${e.params ? ` ${JSON.stringify(e.params)}` : ''}`,
    }));
  }
}

function compile(ajv: Ajv, spec: OpenApiDocument, method: string, template: string): CompiledOperation {
  const operation = spec.paths[template]?.[method];
  if (!operation) throw new Error(`GitHub's OpenAPI description has no operation ${method.toUpperCase()} ${template}`);
  const pattern = new RegExp(
    `^${template
      .split(/(\{[^}]+\})/)
      .map((part) => (part.startsWith('{') ? (part === '{path}' ? '(?:.*)' : '[^/]+') : part.replace(/[.*+?^$()|[\]\\]/g, '\\$&')))
      .join('')}$`,
  );
  const schema = operation.requestBody?.content?.['application/json']?.schema;
  const compiled: CompiledOperation = {
    operationId: operation.operationId,
    method,
    template,
    pattern,
    bodyRequired: operation.requestBody?.required === true,
  };
  if (schema) {
    // Carry along only the component schemas this body refers to, under the same pointer,
    // so the spec's own "#/components/schemas/..." references resolve unchanged.
    const schemas: Record<string, unknown> = {};
    collectRefs(schema, spec, schemas);
    compiled.validate = ajv.compile({ ...(schema as object), components: { schemas } });
  }
  return compiled;
}

function collectRefs(node: unknown, spec: OpenApiDocument, into: Record<string, unknown>): void {
  if (Array.isArray(node)) {
    for (const item of node) collectRefs(item, spec, into);
    return;
  }
  if (!node || typeof node !== 'object') return;
  for (const [key, value] of Object.entries(node)) {
    if (key === '$ref' && typeof value === 'string') {
      const name = value.replace('#/components/schemas/', '');
      if (!(name in into)) {
        into[name] = spec.components.schemas[name];
        collectRefs(into[name], spec, into);
      }
    } else {
      collectRefs(value, spec, into);
    }
  }
}
