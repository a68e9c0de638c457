// ESLint flat config: typescript-eslint's recommended rules over all TypeScript sources.
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
      'no-restricted-imports': forbidFolders(['control', 'chat', 'origin', 'ingest', 'cli', 'scripts', 'player', 'test'], 'edge/ imports only lib/ and config/'),
    },
  },
  {
    // lib/ holds what several roles share and config/ the settings: neither depends on a role.
    files: ['lib/**/*.ts', 'config/**/*.ts'],
    rules: {
      'no-restricted-imports': forbidFolders(['control', 'chat', 'edge', 'origin', 'ingest', 'cli', 'player'], 'lib/ and config/ import no role folder'),
    },
  },
);
