// Unit tests of cookie-provider's pure parts, on the mangled copy the bridge serves (node --test tests/js).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import vm from 'node:vm';

const SOURCE = readFileSync(new URL('../../static/mangled/cookie-provider.js', import.meta.url), 'utf8');

// A page with a cookie jar that honours Domain= the way browsers do for a registrable domain.
function page(hostname) {
  const jar = new Map(); // "name|domain" -> value
  const document = {
    get cookie() {
      return [...jar].map(([key, value]) => key.split('|')[0] + '=' + value).join('; ');
    },
    set cookie(line) {
      const [pair, ...attributes] = line.split('; ');
      const eq = pair.indexOf('='), name = pair.slice(0, eq), value = pair.slice(eq + 1);
      const domain = (attributes.find(a => a.startsWith('Domain=')) || '').slice(7);
      if (domain && (!domain.includes('.') || !hostname.endsWith(domain))) return; // a public suffix, or foreign
      const key = name + '|' + domain;
      if (attributes.includes('Max-Age=0')) jar.delete(key); else jar.set(key, value);
    },
  };
  const window = { document, location: { hostname, protocol: 'https:', hash: '', href: `https://${hostname}/` },
                   console };
  window.window = window;
  return { window, jar, context: vm.createContext(window) };
}

test('loading the script twice keeps the first CookieProvider', () => {
  const { window, context } = page('www.domain-a.test');
  vm.runInContext(SOURCE, context);
  const first = window.CookieProvider;
  vm.runInContext(SOURCE, context);
  assert.equal(window.CookieProvider, first);
});
