// The /api/v1 router: the control plane's routes, then JSON 404s and errors.
import express, { type Request, type Response, type NextFunction } from 'express';

function apiError(res: Response, status: number, code: string, message: string): void {
  res.status(status).json({ error: { code, message } });
}

/** Builds the /api/v1 router around the control plane's routes (control/control-plane.ts). */
export function createApiRouter(control: express.Router): express.Router {
  const r = express.Router();
  r.use(control);
  r.use((_req: Request, res: Response) => apiError(res, 404, 'not_found', 'no such API route'));
  r.use((err: Error & { status?: number; type?: string }, _req: Request, res: Response, _next: NextFunction) => {
    if (err.type === 'entity.parse.failed') return apiError(res, 400, 'invalid_json', 'request body is not valid JSON');
    apiError(res, err.status && err.status < 500 ? err.status : 500, 'internal', err.status && err.status < 500 ? err.message : 'internal error');
  });
  return r;
}
