// The one-way dependency rule (checked by `npm test` before any test runs, and by
// test/boundary/boundary.test.ts): the API contract and its client (api/) import
// neither side; the controller imports the contract and client, never the agent;
// the agent never imports the controller.
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'api-imports-neither-side',
      comment: 'api/ (schema, types, errors, events, client) is shared by both sides and must import neither.',
      severity: 'error',
      from: { path: '^api/' },
      to: { path: '^(agent|controller)/' },
    },
    {
      name: 'controller-uses-api-not-agent',
      comment: 'The controller talks to agents through the API package and its client, never through agent internals.',
      severity: 'error',
      from: { path: '^controller/' },
      to: { path: '^agent/' },
    },
    {
      name: 'agent-never-imports-controller',
      comment: 'The agent runs on every host without the controller.',
      severity: 'error',
      from: { path: '^agent/' },
      to: { path: '^controller/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    exclude: { path: '(^|/)(dist|node_modules)/' },
  },
};
