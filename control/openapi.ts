// The OpenAPI 3.1 document of /api/v1, generated from the routes' own zod schemas (no hand-kept copy).
import { OpenApiGeneratorV31, type OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import { SESSION_COOKIE, CSRF_HEADER } from './auth.ts';

/** The document as served at /api/v1/openapi.json. */
export type OpenApiDocument = ReturnType<OpenApiGeneratorV31['generateDocument']>;

/** Generates the OpenAPI document from every route registered in `registry`. */
export function buildOpenApiDocument(registry: OpenAPIRegistry, opts: { version: string; serverUrl?: string }): OpenApiDocument {
  registry.registerComponent('securitySchemes', 'cookieSession', {
    type: 'apiKey',
    in: 'cookie',
    name: SESSION_COOKIE,
    description: `Console session from POST /api/v1/auth/login. Unsafe methods also need the ${CSRF_HEADER} header (the csrfToken of the login or /auth/me answer).`,
  });
  registry.registerComponent('securitySchemes', 'bearerToken', {
    type: 'http',
    scheme: 'bearer',
    description: 'API token from POST /api/v1/auth/tokens (`Authorization: Bearer oat_…`); no CSRF header needed.',
  });
  const generator = new OpenApiGeneratorV31(registry.definitions);
  return generator.generateDocument({
    openapi: '3.1.0',
    info: {
      title: 'onair API',
      version: opts.version,
      description:
        'Control plane of onair: events, stream keys, live health, news flashes, disclaimers, ad breaks, webhooks, operators. Errors are `{"error":{"code","message"}}` with a stable `code`; unknown fields are rejected. Each operation names the access it needs in `x-onair-role`: `public`, `operator` (any signed-in operator: admins and moderators) or `admin`.',
    },
    servers: opts.serverUrl ? [{ url: opts.serverUrl }] : [],
  });
}
