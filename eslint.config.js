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
    // PHI and secrets never go into a log line (HIPAA Safe Harbor identifiers, tokens): log the `user` pseudonym,
    // never a raw id, email or token field. The post-suite canary scan checks the output; this stops the source.
    files: ['src/**/*.ts'],
    rules: {
      'no-restricted-syntax': ['error', {
        selector: 'CallExpression[callee.property.name=/^(trace|debug|info|warn|error|fatal|child)$/] > ObjectExpression > ' +
          'Property[key.name=/^(user_?id|userId|email|provider_?user_?id|providerUserId|access_?token|accessToken|refresh_?token|refreshToken|authorization|password|secret|client_?secret|clientSecret)$/i]',
        message: 'log the `user` pseudonym, never a raw user id, email, token or secret'
      }]
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
