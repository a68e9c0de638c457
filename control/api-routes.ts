// One declaration per /api/v1 route: the same zod schemas validate the request (unknown fields rejected) and
// describe it in the OpenAPI document; the access level is checked first (401/403/CSRF) and documented too.
import type { Request, Response, Router, NextFunction } from 'express';
import { z } from 'zod';
import { OpenAPIRegistry, type RouteConfig } from '@asteasolutions/zod-to-openapi';
import { ApiError, type Access, type Auth, type Principal } from './auth.ts';
import { jsonErrorHandler } from '../lib/express-errors.ts';

/** `{"error":{"code","message"}}`: every API error. */
export const errorSchema = z
  .object({ error: z.object({ code: z.string().meta({ description: 'Stable machine-readable code' }), message: z.string() }) })
  .meta({ id: 'Error' });

type Method = 'get' | 'post' | 'put' | 'patch' | 'delete';
type AnyObject = z.ZodObject;

/** One response a route may give. */
export interface ResponseSpec {
  description: string;
  /** JSON body schema; omit for an empty body (204). */
  schema?: z.ZodType;
  /** Content type other than application/json (e.g. text/event-stream). */
  contentType?: string;
}

/** What a handler gets: validated input and the caller. */
export interface RouteContext<P, Q, B> {
  req: Request;
  res: Response;
  params: P;
  query: Q;
  body: B;
  /** Defined unless the route is public. */
  principal: Principal | undefined;
}

/** A route's declaration. */
export interface RouteSpec<P extends AnyObject, Q extends AnyObject, B extends z.ZodType> {
  method: Method;
  /** Express-style path relative to /api/v1, e.g. `/events/:id`. */
  path: string;
  summary: string;
  description?: string;
  tags: string[];
  access: Access;
  params?: P;
  query?: Q;
  body?: B;
  /** Status of a successful response whose body the handler returns (default 200). */
  status?: number;
  responses: Record<number, ResponseSpec>;
  /**
   * Returns the JSON body for `status`, or undefined after answering itself (204s, streams).
   * Throw ApiError for anything else.
   */
  handler(ctx: RouteContext<z.infer<P>, z.infer<Q>, z.infer<B>>): Promise<unknown>;
}

/** A registered route. */
export interface RouteInfo {
  method: Method;
  path: string;
  access: Access;
  hasBody: boolean;
}

/** Registers routes on an express router and in an OpenAPI registry at once. */
export interface RouteBuilder {
  readonly router: Router;
  readonly registry: OpenAPIRegistry;
  /** Every route registered so far (express path, method, access, whether it takes a body), for coverage checks. */
  readonly routes: RouteInfo[];
  route<
    P extends AnyObject = z.ZodObject<Record<never, never>>,
    Q extends AnyObject = z.ZodObject<Record<never, never>>,
    B extends z.ZodType = z.ZodUndefined,
  >(
    spec: RouteSpec<P, Q, B>,
  ): void;
}

/** `/events/:id` → `/api/v1/events/{id}`. */
export function openApiPath(expressPath: string): string {
  return '/api/v1' + expressPath.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
}

/** A readable one-line summary of zod issues. */
export function describeIssues(where: string, error: z.ZodError): string {
  return error.issues
    .slice(0, 5)
    .map((i) => {
      const path = i.path.length ? `${where}.${i.path.join('.')}` : where;
      return `${path}: ${i.message}`;
    })
    .join('; ');
}

const accessText: Record<Access, string> = {
  public: 'Public.',
  operator: 'Any signed-in operator (admin or moderator).',
  admin: 'Admins only.',
};

/** Sends the project's JSON error shape. */
export function sendApiError(res: Response, err: ApiError): void {
  res
    .status(err.status)
    .set({ 'cache-control': 'no-store', ...err.headers })
    .json({ error: { code: err.code, message: err.message } });
}

/** Creates a route builder over `router`. */
export function createRouteBuilder(deps: { router: Router; auth: Auth; registry?: OpenAPIRegistry }): RouteBuilder {
  const registry = deps.registry ?? new OpenAPIRegistry();
  const routes: RouteInfo[] = [];
  return {
    router: deps.router,
    registry,
    routes,
    route(spec) {
      routes.push({ method: spec.method, path: spec.path, access: spec.access, hasBody: spec.body !== undefined });
      const responses: RouteConfig['responses'] = {};
      const all: Record<number, ResponseSpec> = { ...spec.responses };
      all[400] ??= { description: 'Invalid input (code `invalid_request` or `invalid_json`)', schema: errorSchema };
      if (spec.body) {
        all[413] ??= { description: 'Request body over 64 KB (`too_large`)', schema: errorSchema };
        all[415] ??= {
          description: 'Not a UTF-8 JSON body (`unsupported_media_type`, `unsupported_charset`, `unsupported_encoding`)',
          schema: errorSchema,
        };
      }
      if (spec.access !== 'public') {
        all[401] ??= { description: 'Not signed in (code `unauthenticated`)', schema: errorSchema };
        all[403] ??= {
          description: 'Wrong role (`forbidden`) or missing CSRF token on a cookie session (`csrf_failed`)',
          schema: errorSchema,
        };
      }
      all[500] ??= { description: 'Server fault (`internal`); the message is generic, the cause is logged', schema: errorSchema };
      for (const [status, r] of Object.entries(all)) {
        const schema = r.schema ?? (Number(status) >= 400 ? errorSchema : undefined);
        responses[status] = schema
          ? { description: r.description, content: { [r.contentType ?? 'application/json']: { schema } } }
          : { description: r.description };
      }
      registry.registerPath({
        method: spec.method,
        path: openApiPath(spec.path),
        summary: spec.summary,
        description: [spec.description, accessText[spec.access]].filter(Boolean).join('\n\n'),
        tags: spec.tags,
        security: spec.access === 'public' ? [] : [{ cookieSession: [] }, { bearerToken: [] }],
        // Machine-readable copy of the access level the router enforces below (auth.check(req, spec.access)).
        'x-onair-role': spec.access,
        request: {
          ...(spec.params ? { params: spec.params } : {}),
          ...(spec.query ? { query: spec.query } : {}),
          ...(spec.body ? { body: { content: { 'application/json': { schema: spec.body } }, required: true } } : {}),
        },
        responses,
      });

      const handle = async (req: Request, res: Response) => {
        const principal = await deps.auth.check(req, spec.access);
        const parse = <T extends z.ZodType>(schema: T | undefined, value: unknown, where: string): z.infer<T> => {
          if (!schema) return {} as z.infer<T>;
          const r = schema.safeParse(value);
          if (!r.success) throw new ApiError(400, 'invalid_request', describeIssues(where, r.error));
          return r.data;
        };
        const params = parse(spec.params, { ...req.params }, 'params');
        const query = parse(spec.query, { ...(req.query as Record<string, unknown>) }, 'query');
        let body: unknown = undefined;
        if (spec.body) {
          if (!req.is('application/json'))
            throw new ApiError(415, 'unsupported_media_type', 'send a JSON body (content-type: application/json)');
          body = parse(spec.body, req.body, 'body');
        } else if (req.body !== undefined && Object.keys(req.body as object).length > 0) {
          throw new ApiError(400, 'invalid_request', 'this route takes no request body');
        }
        const out = await spec.handler({ req, res, params, query, body: body as never, principal });
        if (out !== undefined && !res.headersSent)
          res
            .status(spec.status ?? 200)
            .set('cache-control', 'no-store')
            .json(out);
      };
      deps.router[spec.method](spec.path, (req: Request, res: Response, next: NextFunction) => {
        handle(req, res).catch(next);
      });
    },
  };
}

/** Turns thrown errors into JSON errors: ApiError as is, body-parser errors by their documented codes, the rest as 500. */
export function apiErrorHandler(log: { error(obj: object, msg: string): void }) {
  const fallback = jsonErrorHandler(log);
  return (err: unknown, req: Request, res: Response, next: NextFunction): void => {
    if (!res.headersSent && err instanceof ApiError) return sendApiError(res, err);
    fallback(err, req, res, next);
  };
}
