import tseslint from 'typescript-eslint';

/** A dynamic import names its module in a string literal, so that the rules below see it. */
const NAMED_DYNAMIC_IMPORT = {
  selector: "ImportExpression[source.type!='Literal']",
  message: 'name the module in a string literal: the layer rules cannot see a computed import',
};

/** An esquery regex for a module pattern of no-restricted-imports ('/' written \\x2F: esquery ends a regex at '/'). */
function specifierRegex(pattern) {
  const body = pattern
    .replace(/[.+?^${}()|[\]\\]/g, '\\$&')
    .replace(/^\*\*\//, '(^|/)')
    .replace(/\/\*\*$/, '/')
    .replace(/\*/g, '[^/]*')
    .replaceAll('/', '\\x2F');
  return pattern.startsWith('**/') || pattern.endsWith('/**') || pattern.endsWith('*') ? body : `^${body}$`;
}

/**
 * The same restriction for static imports (no-restricted-imports) and for dynamic ones
 * (no-restricted-syntax, which also requires them to name their module).
 */
function restrict({ patterns = [], paths = [] }) {
  const names = [...patterns, ...paths.map((path) => path.name)];
  return {
    'no-restricted-imports': ['error', { patterns, paths }],
    'no-restricted-syntax': [
      'error',
      NAMED_DYNAMIC_IMPORT,
      ...names.map((name) => ({
        selector: `ImportExpression[source.value=/${specifierRegex(name)}/]`,
        message: `a dynamic import of '${name}' breaks this folder's layer rule`,
      })),
    ],
  };
}

/** For each layer of `root`, the layers above it that it may not import (nor the worker). */
function layerRules(root, layers) {
  return layers.map(([layer, above]) => ({
    files: layer === 'main' ? [`${root}/*.ts`] : [`${root}/${layer}/**/*.ts`],
    rules: restrict({
      patterns: [
        '**/worker/**',
        ...above.map((upper) => (upper === 'main' ? '**/coordinator/main.ts' : `**/coordinator/${upper}/**`)),
        ...above.filter((upper) => upper !== 'main').map((upper) => `../${upper}/**`),
      ],
    }),
  }));
}

export default tseslint.config(
  {
    ignores: [
      'scratch/**',
      'node_modules/**',
      'coverage/**',
      'test-artifacts/**',
      'coordinator/dashboard/vendor/**',
      'docker/build/**',
    ],
  },
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      // A promise returned inside try/finally is not awaited there: finally runs first.
      '@typescript-eslint/return-await': ['error', 'in-try-catch'],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      'no-restricted-imports': 'off',
      'no-restricted-syntax': ['error', NAMED_DYNAMIC_IMPORT],
      // tfjs ops return Tensor<Rank>; asserting the rank is deliberate documentation.
      '@typescript-eslint/no-unnecessary-type-assertion': 'off',
    },
  },
  {
    files: ['worker/**/*.ts'],
    rules: restrict({
      patterns: ['**/coordinator/**', '**/cli/**'],
      paths: ['fastify', 'better-sqlite3', 'prom-client', 'uplot'].map((name) => ({
        name,
        message: 'the volunteer package carries no server dependency',
      })),
    }),
  },
  {
    // Bundled for a browser tab: nothing of Node's.
    files: ['worker/browser/**/*.ts'],
    rules: restrict({
      patterns: [
        '**/coordinator/**',
        '**/cli/**',
        'node:*',
        '../run-worker.ts',
        '../connection.ts',
        '../blob-cache.ts',
      ],
      paths: ['ws', 'pino', 'fastify', 'better-sqlite3', 'prom-client', 'uplot'].map((name) => ({
        name,
        message: 'a browser tab cannot load this',
      })),
    }),
  },
  // The coordinator's layers point one way: main -> http -> read -> core -> job -> top -> store.
  ...layerRules('coordinator', [
    ['main', []],
    ['http', ['main']],
    ['read', ['main', 'http']],
    ['core', ['main', 'http', 'read']],
    ['job', ['main', 'http', 'read', 'core']],
    ['top', ['main', 'http', 'read', 'core', 'job']],
    ['store', ['main', 'http', 'read', 'core', 'job', 'top']],
    // Merge strategies are arithmetic on weights: they use no other layer.
    ['merge', ['main', 'http', 'read', 'core', 'job', 'top', 'store']],
  ]),
  {
    // The builders run inside the coordinator: they name their entries by path and import no volunteer code.
    files: ['packaging/*.ts'],
    rules: restrict({ patterns: ['**/worker/**', '**/coordinator/**', '**/cli/**'] }),
  },
  {
    // What each bundle runs: the volunteer's code, nothing of the server's.
    files: ['packaging/entries/*.ts'],
    rules: restrict({ patterns: ['**/coordinator/**', '**/cli/**'] }),
  },
  {
    files: ['shared/**/*.ts'],
    rules: restrict({ patterns: ['**/worker/**', '**/coordinator/**', '**/cli/**'] }),
  },
  {
    files: ['proto/**/*.ts'],
    rules: restrict({ patterns: ['**/shared/**', '**/worker/**', '**/coordinator/**', '**/cli/**'] }),
  },
  { files: ['**/*.js', '**/*.mjs'], ...tseslint.configs.disableTypeChecked },
);
