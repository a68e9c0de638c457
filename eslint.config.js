// ESLint flat config: typescript-eslint's recommended rules over all TypeScript sources, a few type-aware rules that
// catch lost promises and unhandled union members, and the folder dependency rules of DESIGN §1.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/** A no-restricted-imports rule refusing relative imports into the given top-level folders (DESIGN §1). */
function forbidFolders(folders, message) {
  return ['error', { patterns: [{ regex: `^(\\.\\./)+(${folders.join('|')})/`, message }] }];
}

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'data/**', 'test/artifacts/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      // node:test's test()/describe() return promises the runner itself awaits.
      '@typescript-eslint/no-floating-promises': [
        'error',
        { allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['test', 'it', 'describe', 'suite'] }] },
      ],
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/switch-exhaustiveness-check': ['error', { considerDefaultExhaustiveForUnions: true }],
    },
  },
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
    },
  },
  {
    // The edge is stateless HLS caching: it builds on lib/ and config/ only (chat lives in chat/). Its tests may put
    // a real origin in front of it.
    files: ['edge/**/*.ts'],
    ignores: ['edge/**/*.test.ts'],
    rules: {
      'no-restricted-imports': forbidFolders(
        ['control', 'chat', 'origin', 'ingest', 'cli', 'scripts', 'player', 'test'],
        'edge/ imports only lib/ and config/',
      ),
    },
  },
  {
    // lib/ holds what several roles share and config/ the settings: neither depends on a role.
    files: ['lib/**/*.ts', 'config/**/*.ts'],
    rules: {
      'no-restricted-imports': forbidFolders(
        ['control', 'chat', 'edge', 'origin', 'ingest', 'cli', 'player'],
        'lib/ and config/ import no role folder',
      ),
    },
  },
);
