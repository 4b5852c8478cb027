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

// A page of domain-b that arrived with `hash`; the bridge answers the redeem with `answer` (HANG: never). Returns
// the page and what it did, in order: requests to the bridge, elements appended, cookies written.
const HANG = Symbol('no answer');
function arriving(hash, answer) {
  const { window, jar, context } = page('www.domain-b.test'), events = [], document = window.document;
  const cookie = Object.getOwnPropertyDescriptor(document, 'cookie');
  Object.defineProperty(document, 'cookie', {
    get: cookie.get, set: line => { if (!line.startsWith('__cb=')) events.push('cookie ' + line.split(';')[0]); cookie.set(line); },
  });
  Object.assign(document, {
    referrer: 'https://www.domain-a.test/',
    createElement: tagName => ({ tagName, style: {} }),
    documentElement: { append: element => events.push('append ' + element.tagName) },
    head: { append: element => events.push('load ' + String(element.src)) },
  });
  Object.assign(window.location, { hash, href: 'https://www.domain-b.test/' + hash, toString() { return this.href; } });
  Object.assign(window, {
    URL, setTimeout,
    MessageChannel: class { constructor() { this.port1 = { postMessage() {} }; this.port2 = {}; } },
    fetch: async (url, init) => {
      events.push('fetch ' + String(url) + ' ' + init.body);
      return answer === HANG ? new Promise(() => {}) : { json: async () => answer };
    },
  });
  vm.runInContext(SOURCE, context);
  const provider = new window.CookieProvider('session', 'https://bridge.test/iframe.html', { timeout: 50 });
  return { provider, events, jar };
}

const settled = () => new Promise(resolve => setTimeout(resolve, 5)); // a few tasks: what was due has happened

test('arriving with a handoff code: the redeem goes out first, the iframe and the API script only after the cookie is written', async () => {
  const { provider, events, jar } = arriving('#cb-handoff=C1',
    { name: 'session', value: 'v1', from: 'https://www.domain-a.test' });
  assert.deepEqual(events, [
    'fetch https://bridge.test/api/v1/handoff/redeem {"code":"C1","referrer":"https://www.domain-a.test/"}',
  ]);
  assert.equal(await provider.loadCookie(), 'v1');
  await settled();
  assert.equal(provider.restoredFrom, 'handoff');
  assert.deepEqual(jar, new Map([['session|domain-b.test', 'v1']])); // the registrable domain, as Genesys Widgets write it
  const written = events.indexOf('cookie session=v1'), frame = events.indexOf('append iframe');
  const api = events.findIndex(e => e.startsWith('load '));
  assert.ok(written > 0 && frame > written && api > written, events.join('\n'));
  assert.match(events[api], /^load https:\/\/bridge\.test\/cookie-provider-api\./);
});

test('a page without a code makes its iframe at once', () => {
  for (const hash of ['', '#cb-handoff=']) {
    const { events } = arriving(hash, HANG);
    assert.deepEqual(events, ['append iframe'], hash);
  }
});

test('a redeem that never answers: loadCookie() gives up within its timeout, and the iframe still comes', async () => {
  const { provider, events } = arriving('#cb-handoff=C2', HANG);
  assert.equal(await provider.loadCookie(), null); // the provider's timeout is 50 ms here
  await settled();
  assert.ok(events.includes('append iframe'), events.join('\n'));
});

test('arriving with a refused code restores nothing, and still loads the API script that takes the code away', async () => {
  const { provider, events } = arriving('#cb-handoff=PLANTED', { error: 'untrusted-referrer' });
  assert.equal(await provider.loadCookie(), null);
  assert.equal(provider.restoredFrom, undefined);
  assert.ok(events.some(e => e.startsWith('load https://bridge.test/cookie-provider-api.')), events.join('\n'));
  assert.ok(!events.some(e => e.startsWith('cookie session=')), events.join('\n'));
});
