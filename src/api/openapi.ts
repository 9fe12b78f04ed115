/** The OpenAPI 3.1 document of the management API, built from its endpoint table (never out of step). */
import { ERROR_CODES } from '../errors.ts';
import type { QueryParameter } from './replica-query.ts';

/** What the document needs of an endpoint. */
export interface DescribedEndpoint {
  method: string;
  path: string;
  action: string;
  summary: string;
  /** Its query parameters. */
  query?: readonly QueryParameter[];
}

/** The document the agent serves at GET /v1/openapi.json. */
export function openApiDocument(endpoints: readonly DescribedEndpoint[]): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const e of endpoints) {
    const params: unknown[] = [...e.path.matchAll(/\{([a-z]+)\}/g)].map((m) => ({ name: m[1], in: 'path', required: true, schema: { type: 'string', pattern: '^[a-z0-9][a-z0-9-]{0,62}$' } }));
    for (const q of e.query ?? []) params.push({ name: q.name, in: 'query', required: false, description: q.description, schema: q.array ? { type: 'array', items: { type: q.type } } : { type: q.type }, ...(q.array ? { style: 'form', explode: true } : {}) });
    (paths[e.path] ??= {})[e.method.toLowerCase()] = {
      summary: e.summary,
      operationId: `${e.method.toLowerCase()}${e.path.replace(/\{([a-z]+)\}/g, 'By_$1').replace(/[^A-Za-z_]+(.)?/g, (_m, c: string | undefined) => (c ?? '').toUpperCase())}`,
      'x-depad-action': e.action,
      ...(params.length > 0 ? { parameters: params } : {}),
      responses: {
        '200': { description: 'OK', content: { 'application/json': {} } },
        default: { description: 'An error', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } },
      },
    };
  }
  return {
    openapi: '3.1.0',
    info: { title: 'depad agent API', version: '1' },
    security: [{ bearer: [] }],
    paths,
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'a token from `depad token create`' } },
      schemas: {
        Error: {
          type: 'object',
          required: ['error'],
          properties: {
            error: {
              type: 'object',
              required: ['code', 'message'],
              properties: { code: { type: 'string', enum: Object.keys(ERROR_CODES) }, message: { type: 'string' }, hint: { type: 'string' } },
            },
          },
        },
      },
    },
  };
}
