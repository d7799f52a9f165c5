// Bundles the front end with esbuild:
//   dyntorch/viz/static/widget.js        anywidget ES module (views, inspector, folding)
//   dyntorch/viz/static/layout_worker.js Graphviz WebAssembly worker (sent once per page)
//   lib/plugin.js                        JupyterLab plugin source for `jupyter labextension build`
import { build } from 'esbuild';

const out = '../dyntorch/viz/static';
const common = { bundle: true, minify: true, target: 'es2020', legalComments: 'none', logLevel: 'warning' };

await Promise.all([
  build({ ...common, entryPoints: ['src/widget.ts'], outfile: `${out}/widget.js`, format: 'esm', loader: { '.css': 'text' } }),
  build({ ...common, entryPoints: ['src/layout_worker.ts'], outfile: `${out}/layout_worker.js`, format: 'iife' }),
  build({
    ...common, minify: false, entryPoints: ['src/plugin.ts'], outfile: 'lib/plugin.js', format: 'esm',
    external: ['@jupyterlab/*', '@lumino/*']
  })
]);
