// /api/v1 routes of operator auth: login/logout, the current operator (and its CSRF token), API tokens, operators.
import { z } from 'zod';
import { ApiError, type Auth } from './auth.ts';
import type { RouteBuilder } from './api-routes.ts';
import { epochMs, operatorSchema } from './api-schemas.ts';
import { MIN_PASSWORD_LENGTH, OperatorExistsError, type OperatorService } from './operators.ts';

const tokenInfoSchema = z
  .object({ id: z.string(), name: z.string(), createdAt: epochMs, lastUsedAt: epochMs.nullable() })
  .meta({ id: 'ApiToken' });
const sessionSchema = z.object({ operator: operatorSchema, csrfToken: z.string().nullable() }).meta({ id: 'Session' });

/** Registers the auth and operator routes. */
export function registerAuthRoutes(b: RouteBuilder, deps: { auth: Auth; operators: OperatorService }): void {
  const { auth, operators } = deps;
  const tags = ['auth'];

  b.route({
    method: 'post',
    path: '/auth/login',
    summary: 'Sign in; sets the httpOnly session cookie and returns the CSRF token',
    description: 'Failed attempts are rate limited per address and e-mail (HTTP 429 `rate_limited` with Retry-After).',
    tags,
    access: 'public',
    body: z.strictObject({ email: z.string().min(3).max(254), password: z.string().min(1).max(1024) }),
    responses: {
      200: { description: 'Signed in', schema: sessionSchema },
      401: { description: 'Wrong e-mail or password (`invalid_credentials`)', schema: undefined },
      429: { description: 'Too many failed logins (`rate_limited`)', schema: undefined },
    },
    handler: async ({ req, res, body }) => {
      const { operator, csrfToken } = await auth.login(req, res, body.email, body.password);
      return { operator, csrfToken };
    },
  });

  b.route({
    method: 'post',
    path: '/auth/logout',
    summary: 'End the session',
    tags,
    access: 'operator',
    responses: { 204: { description: 'Signed out' } },
    handler: async ({ res, principal }) => {
      await auth.logout(principal!, res);
      res.status(204).end();
      return undefined;
    },
  });

  b.route({
    method: 'get',
    path: '/auth/me',
    summary: 'The signed-in operator (and the CSRF token of a cookie session)',
    tags,
    access: 'operator',
    responses: { 200: { description: 'The caller', schema: sessionSchema } },
    handler: async ({ principal }) => ({ operator: principal!.operator, csrfToken: principal!.csrfToken ?? null }),
  });

  b.route({
    method: 'get',
    path: '/auth/tokens',
    summary: "The caller's API tokens",
    tags,
    access: 'operator',
    responses: { 200: { description: 'Tokens (never the secret)', schema: z.object({ tokens: z.array(tokenInfoSchema) }) } },
    handler: async ({ principal }) => ({ tokens: await auth.listTokens(principal!.operator.id) }),
  });

  b.route({
    method: 'post',
    path: '/auth/tokens',
    summary: 'Create a bearer API token for scripts (shown once)',
    description:
      'Use it as `Authorization: Bearer <token>`; it carries the role of the operator who created it. Bearer requests need no CSRF token.',
    tags,
    access: 'operator',
    body: z.strictObject({ name: z.string().trim().min(1).max(100) }),
    status: 201,
    responses: { 201: { description: 'The token, shown only now', schema: z.object({ token: z.string(), apiToken: tokenInfoSchema }) } },
    handler: async ({ principal, body }) => {
      const { token, info } = await auth.createToken(principal!.operator.id, body.name);
      return { token, apiToken: info };
    },
  });

  b.route({
    method: 'delete',
    path: '/auth/tokens/:tokenId',
    summary: 'Revoke one of the caller’s API tokens',
    tags,
    access: 'operator',
    params: z.strictObject({ tokenId: z.string().min(1).max(64) }),
    responses: { 204: { description: 'Revoked' }, 404: { description: 'No such token (`not_found`)' } },
    handler: async ({ res, principal, params }) => {
      if (!(await auth.revokeToken(principal!.operator.id, params.tokenId))) throw new ApiError(404, 'not_found', 'no such token');
      res.status(204).end();
      return undefined;
    },
  });

  b.route({
    method: 'get',
    path: '/operators',
    summary: 'List operators',
    tags: ['operators'],
    access: 'admin',
    responses: { 200: { description: 'Operators', schema: z.object({ operators: z.array(operatorSchema) }) } },
    handler: async () => ({ operators: await operators.list() }),
  });

  b.route({
    method: 'post',
    path: '/operators',
    summary: 'Create an operator',
    tags: ['operators'],
    access: 'admin',
    body: z.strictObject({
      email: z.string().trim().toLowerCase().email().max(254),
      role: z.enum(['admin', 'moderator']),
      password: z.string().min(MIN_PASSWORD_LENGTH).max(1024),
    }),
    status: 201,
    responses: {
      201: { description: 'Created', schema: z.object({ operator: operatorSchema }) },
      409: { description: 'E-mail taken (`operator_exists`)' },
    },
    handler: async ({ body }) => {
      try {
        return { operator: await operators.create(body) };
      } catch (err) {
        if (err instanceof OperatorExistsError) throw new ApiError(409, 'operator_exists', err.message);
        if (err instanceof RangeError) throw new ApiError(400, 'invalid_request', err.message);
        throw err;
      }
    },
  });

  b.route({
    method: 'delete',
    path: '/operators/:operatorId',
    summary: 'Disable an operator (ends its sessions and revokes its tokens)',
    tags: ['operators'],
    access: 'admin',
    params: z.strictObject({ operatorId: z.string().min(1).max(64) }),
    responses: {
      204: { description: 'Disabled' },
      404: { description: 'No such active operator (`not_found`)' },
      409: { description: 'Cannot disable yourself' },
    },
    handler: async ({ res, principal, params }) => {
      if (params.operatorId === principal!.operator.id) throw new ApiError(409, 'cannot_disable_self', 'you cannot disable yourself');
      if (!(await operators.disable(params.operatorId))) throw new ApiError(404, 'not_found', 'no such active operator');
      res.status(204).end();
      return undefined;
    },
  });
}
