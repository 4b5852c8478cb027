// static/<name>.js (the readable source) -> static/mangled/<name>.js (locals renamed, what the bridge minifies and
// serves). `node mangle.mjs` writes the copies; `node mangle.mjs --check` exits 1 when one is out of date.
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import { minify } from 'terser';

const SCRIPTS = ['cookie-provider', 'cookie-provider-api', 'cookie-provider-links', 'cookie-provider-resume'];
const STATIC = new URL('../../static/', import.meta.url);
const OPTIONS = { ecma: 2021, compress: { passes: 1 }, mangle: true, format: { comments: /^!/ } };

const check = process.argv.includes('--check');
const stale = [];
await mkdir(new URL('mangled/', STATIC), { recursive: true });
for (const name of SCRIPTS) {
  const source = await readFile(new URL(`${name}.js`, STATIC), 'utf8');
  const { code } = await minify(source, OPTIONS);
  const target = new URL(`mangled/${name}.js`, STATIC);
  const output = code + '\n';
  if (check) {
    const current = await readFile(target, 'utf8').catch(() => null);
    if (current !== output) stale.push(`static/mangled/${name}.js`);
  } else {
    await writeFile(target, output);
  }
}
if (stale.length) {
  console.error(`out of date: ${stale.join(', ')}; run: npm run --prefix tools/terser build`);
  process.exit(1);
}
