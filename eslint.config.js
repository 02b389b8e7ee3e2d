// Flat config: typescript-eslint's type-aware rules plus the few house rules that catch real bugs
// (floating promises, non-exhaustive switches, focused tests left in).
import js from '@eslint/js'
import tseslint from 'typescript-eslint'

export default tseslint.config(
  { ignores: ['node_modules/**', 'data/**', '.cache/**', 'coverage/**', 'bench/results/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname }
    },
    rules: {
      // node:test's describe/test return promises the runner itself awaits.
      '@typescript-eslint/no-floating-promises': ['error', {
        allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['describe', 'test', 'it', 'suite'] }]
      }],
      '@typescript-eslint/switch-exhaustiveness-check': ['error', { considerDefaultExhaustiveForUnions: true }],
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/return-await': ['error', 'in-try-catch'],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      curly: ['error', 'multi-line'],
      eqeqeq: ['error', 'always', { null: 'ignore' }],
      'no-throw-literal': 'error',
      'no-restricted-properties': ['error',
        { object: 'describe', property: 'only', message: 'focused tests must not be committed' },
        { object: 'it', property: 'only', message: 'focused tests must not be committed' },
        { object: 'test', property: 'only', message: 'focused tests must not be committed' }]
    }
  },
  {
    // Adapters for pg and PGlite live in storage/; nothing else may reach for a driver directly.
    files: ['src/**/*.ts'],
    ignores: ['src/storage/**'],
    rules: {
      'no-restricted-imports': ['error', { paths: [
        { name: 'pg', message: 'use the Database port from src/storage' },
        { name: '@electric-sql/pglite', message: 'use the Database port from src/storage' }] }]
    }
  },
  {
    // The Redis adapters live in cache/redis*.ts; everything else uses the ports (EventCache, Coordination).
    files: ['src/**/*.ts'],
    ignores: ['src/storage/**', 'src/cache/redis*.ts'],
    rules: {
      'no-restricted-imports': ['error', { paths: [
        { name: 'pg', message: 'use the Database port from src/storage' },
        { name: '@electric-sql/pglite', message: 'use the Database port from src/storage' },
        { name: 'ioredis', message: 'use a port (EventCache, Coordination) with its adapter in src/cache' }] }]
    }
  },
  {
    files: ['eslint.config.js', '**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: {
      parserOptions: { projectService: false, project: false },
      globals: { process: 'readonly', console: 'readonly' }
    }
  }
)
