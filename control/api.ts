// The /api/v1 router: the control plane's routes, then JSON 404s and errors.
import express, { type Request, type Response } from 'express';
import { jsonErrorHandler } from '../lib/express-errors.ts';

/** Builds the /api/v1 router around the control plane's routes (control/control-plane.ts). */
export function createApiRouter(control: express.Router, log: { error(obj: object, msg: string): void } = console): express.Router {
  const r = express.Router();
  r.use(control);
  r.use((_req: Request, res: Response) => {
    res.status(404).json({ error: { code: 'not_found', message: 'no such API route' } });
  });
  r.use(jsonErrorHandler(log));
  return r;
}
