// Bundles src/index.js into dist/index.js (one ES module, default export = the Streamlit
// Components v2 entry) and records the hash of the sources it was built from in
// dist/SOURCES.sha256, which tests/unit/test_map_bundle.py recomputes (no Node at test time).
import { build } from 'esbuild';
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';

const here = new URL('.', import.meta.url).pathname;

function walk(dir) {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? walk(p) : [p];
  });
}

// Same recipe as components/map/bundle.py: sha256 over "path\0" + bytes + "\0" for each source
// file in sorted POSIX-path order.
export function sourcesHash() {
  const files = ['package.json', 'package-lock.json', 'build.mjs',
    ...walk(join(here, 'src')).map((p) => relative(here, p).split(sep).join('/'))].sort();
  const h = createHash('sha256');
  for (const f of files) {
    h.update(f + '\0');
    h.update(readFileSync(join(here, f)));
    h.update('\0');
  }
  return h.digest('hex');
}

await build({
  entryPoints: [join(here, 'src', 'index.js')],
  bundle: true,
  format: 'esm',
  minify: true,
  target: 'es2020',
  outfile: join(here, 'dist', 'index.js'),
  legalComments: 'eof',
  logLevel: 'warning',
});
writeFileSync(join(here, 'dist', 'SOURCES.sha256'), sourcesHash() + '\n');
console.log('built dist/index.js', statSync(join(here, 'dist', 'index.js')).size, 'bytes');
