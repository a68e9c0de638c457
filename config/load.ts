// Loads the configuration: defaults, then an optional JSON file (ONAIR_CONFIG), then ONAIR_* variables.
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { configSchema, type Config } from './schema.ts';

/** Thrown when configuration is invalid; the message names every offending field. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** `httpPort` → `ONAIR_HTTP_PORT`. */
export function envName(key: string): string {
  return 'ONAIR_' + key.replace(/[A-Z]/g, (c) => '_' + c).toUpperCase();
}

/** What to write for settings whose shape a message alone does not make clear. */
const examples: Record<string, string> = {
  ladder: '[{"name":"720p","height":720,"fps":30,"videoKbps":2800}]',
};

function unwrap(shape: z.ZodType): z.ZodType {
  let inner: z.ZodType = shape;
  while (inner instanceof z.ZodDefault || inner instanceof z.ZodOptional) {
    inner = inner.unwrap() as z.ZodType;
  }
  return inner;
}

/** Turns an environment string into the JSON type the schema expects for that key. */
function fromEnv(key: string, raw: string, shape: z.ZodType): unknown {
  const inner = unwrap(shape);
  if (inner instanceof z.ZodNumber) {
    const n = Number(raw);
    return raw.trim() === '' || Number.isNaN(n) ? raw : n;
  }
  if (inner instanceof z.ZodArray || inner instanceof z.ZodPipe) {
    const t = raw.trim();
    // A list of objects (the ladder) can only be JSON; a list of strings may also be comma-separated.
    const ofObjects = inner instanceof z.ZodArray && inner.element instanceof z.ZodObject;
    if (t.startsWith('[') || ofObjects) {
      try {
        return JSON.parse(t);
      } catch {
        const like = examples[key] ?? '["a","b"] or a comma-separated list a,b';
        throw new ConfigError(`${envName(key)}: not JSON; write a JSON array like ${like}`);
      }
    }
    return t === '' ? [] : t.split(',').map((s) => s.trim());
  }
  return raw;
}

/** Builds the configuration from `overrides`, `ONAIR_CONFIG` file and `ONAIR_*` environment variables. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: Partial<Record<keyof Config, unknown>> = {}): Config {
  let fromFile: Record<string, unknown> = {};
  const file = env.ONAIR_CONFIG;
  if (file) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new ConfigError(`ONAIR_CONFIG: cannot read ${file}: ${(err as Error).message}`);
    }
    try {
      fromFile = JSON.parse(text) as Record<string, unknown>;
    } catch (err) {
      throw new ConfigError(`ONAIR_CONFIG: ${file} is not valid JSON: ${(err as Error).message}`);
    }
  }
  const merged: Record<string, unknown> = { ...fromFile };
  const shape = configSchema.shape as Record<string, z.ZodType>;
  for (const key of Object.keys(shape)) {
    const raw = env[envName(key)];
    if (raw !== undefined) merged[key] = fromEnv(key, raw, shape[key]!);
  }
  // The conventional variables, under their ONAIR_ names.
  if (merged.redisUrl === undefined && env.REDIS_URL) merged.redisUrl = env.REDIS_URL;
  if (merged.databaseUrl === undefined && env.DATABASE_URL) merged.databaseUrl = env.DATABASE_URL;
  for (const [k, v] of Object.entries(overrides)) if (v !== undefined) merged[k] = v;
  const known = new Set(Object.keys(shape));
  for (const name of Object.keys(env)) {
    if (!name.startsWith('ONAIR_') || name === 'ONAIR_CONFIG') continue;
    if (![...known].some((k) => envName(k) === name)) {
      throw new ConfigError(`${name}: unknown setting`);
    }
  }
  const result = configSchema.safeParse(merged);
  if (!result.success) {
    const lines = result.error.issues.map((i) => {
      const key = String(i.path[0] ?? '');
      const where = i.path.length ? `${envName(key)} (${i.path.join('.')})` : 'config';
      const like = examples[key];
      return `${where}: ${i.message}${like === undefined ? '' : `; write a JSON array like ${like}`}`;
    });
    throw new ConfigError(`invalid configuration:\n  ${lines.join('\n  ')}`);
  }
  return result.data;
}
