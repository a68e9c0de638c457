import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { configSchema } from './schema.ts';
import { envName } from './load.ts';

test('README documents every configuration setting and no removed one', () => {
  const readme = readFileSync(join(import.meta.dirname, '..', 'README.md'), 'utf8');
  const documented = new Set([...readme.matchAll(/^\| `(ONAIR_[A-Z0-9_]+)` \|/gm)].map((m) => m[1]));
  const settings = Object.keys(configSchema.shape).map(envName);
  for (const name of settings) assert.ok(documented.has(name), `${name} is missing from README's configuration table`);
  for (const name of documented) assert.ok(settings.includes(name!), `${name} is in README but not a setting`);
});
