// Unit tests of the bridge's iframe script (static/iframe.js) in a simulated page: a cookie jar that keeps
// host-only and domain cookies apart, and a parent that hands over a port as the provider does.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import vm from 'node:vm';

const SOURCE = readFileSync(new URL('../../static/iframe.js', import.meta.url), 'utf8');
const HOST = 'bridge.example.test', TRUSTED = 'https://www.domain-a.test', NAME = 'customer-defined-session-cookie';

// Cookies keyed by name, domain ('' = host-only) and path, listed for /iframe.html as a browser lists them.
function cookieJar() {
  const jar = new Map();
  return {
    jar,
    get cookie() {
      return [...jar.values()].filter(c => '/iframe.html'.startsWith(c.path)).map(c => `${c.name}=${c.value}`).join('; ');
    },
    set cookie(line) {
      const [pair, ...attributes] = line.split('; ');
      const eq = pair.indexOf('='), name = pair.slice(0, eq), value = pair.slice(eq + 1);
      const attribute = key => (attributes.find(a => a.toLowerCase().startsWith(key + '=')) || '').slice(key.length + 1);
      const domain = attribute('domain'), path = attribute('path') || '/';
      if (domain && !(HOST === domain || HOST.endsWith('.' + domain))) return;
      const key = `${name}|${domain}|${path}`;
      if (attribute('max-age') === '0') jar.delete(key); else jar.set(key, { name, value, domain, path });
    },
  };
}

// Loads iframe.js and connects as the trusted parent; returns ask(request) -> reply. `globals`: more of the
// frame's window (navigator); `log`: where the hello answer is noted, in order with what the caller notes there.
function bridge(document, globals = {}, log = []) {
  const listeners = [], parent = {};
  const config = { origins: [TRUSTED], names: [NAME], maxAge: 60, api: true };
  document.getElementById = () => ({ textContent: JSON.stringify(config) });
  const window = { document, parent, location: { hostname: HOST, pathname: '/iframe.html' }, isSecureContext: true,
                   addEventListener: (type, listener) => listeners.push(listener), ...globals };
  window.window = window;
  vm.runInContext(SOURCE, vm.createContext(window));
  const port = { postMessage: () => log.push('hello answered') };
  listeners[0]({ source: parent, origin: TRUSTED, ports: [port], data: { cookiebridge: 1, op: 'hello' } });
  // Replies are objects of the script's realm: compared as JSON.
  return request => new Promise(resolve =>
    port.onmessage({ data: request, ports: [{ postMessage: reply => resolve(JSON.parse(JSON.stringify(reply))) }] }));
}

test('get and set round-trip a session value', async () => {
  const ask = bridge(cookieJar());
  assert.deepEqual(await ask({ op: 'set', name: NAME, value: '{"token":"t"}' }), { ok: true, value: true });
  assert.deepEqual(await ask({ op: 'get', name: NAME }), { ok: true, value: '{"token":"t"}' });
});

test('a cookie tossed in by a sibling host is expired, and the real session is answered', async () => {
  const document = cookieJar(), ask = bridge(document);
  // evil.example.test sets Domain=example.test; Path=/iframe.html: older, so the browser lists it first.
  document.jar.set(`${NAME}|example.test|/iframe.html`, { name: NAME, value: 'planted', domain: 'example.test', path: '/iframe.html' });
  document.jar.set(`${NAME}||/iframe.html`, { name: NAME, value: 'real', domain: '', path: '/iframe.html' });
  assert.deepEqual(await ask({ op: 'get', name: NAME }), { ok: true, value: 'real' });
  assert.equal([...document.jar.values()].filter(c => c.name === NAME).length, 1);
  assert.deepEqual(await ask({ op: 'set', name: NAME, value: 'next' }), { ok: true, value: true });
});

test('two copies that cannot be told apart are answered with an error, not with either value', async () => {
  const document = cookieJar(), ask = bridge(document);
  // Two cookies of the name that expiring domain copies cannot remove (another path prefix).
  document.jar.set(`${NAME}||/iframe.html`, { name: NAME, value: 'one', domain: '', path: '/iframe.html' });
  document.jar.set(`${NAME}||/`, { name: NAME, value: 'two', domain: '', path: '/' });
  assert.deepEqual(await ask({ op: 'get', name: NAME }), { ok: false, error: 'duplicate-cookie' });
});

// Passive storage access: a frame whose storage-access permission is granted uses it before it answers anything;
// in every other state it asks for nothing (no prompt, no console noise) and answers all the same.
function withPermission(state, log) {
  const document = cookieJar();
  document.requestStorageAccess = () => {
    log.push('requestStorageAccess');
    return Promise.resolve();
  };
  const query = async descriptor => {
    assert.equal(descriptor.name, 'storage-access');
    if (state === 'unsupported') throw new TypeError("'storage-access' is not a valid PermissionName");
    return { state };
  };
  return { document, navigator: state === 'no-api' ? {} : { permissions: { query } } };
}

test('a granted storage-access permission is used before the first answer', async () => {
  const log = [], { document, navigator } = withPermission('granted', log);
  const ask = bridge(document, { navigator }, log);
  const reply = await ask({ op: 'get', name: NAME });
  log.push('get answered');
  assert.deepEqual(reply, { ok: true, value: null });
  assert.deepEqual(log, ['requestStorageAccess', 'hello answered', 'get answered']);
});

for (const state of ['prompt', 'denied', 'unsupported', 'no-api']) {
  test(`storage-access ${state}: no request for access, and the answers still come`, async () => {
    const log = [], { document, navigator } = withPermission(state, log);
    const ask = bridge(document, { navigator }, log);
    assert.deepEqual(await ask({ op: 'set', name: NAME, value: 'v' }), { ok: true, value: true });
    assert.deepEqual(await ask({ op: 'get', name: NAME }), { ok: true, value: 'v' });
    assert.deepEqual(await ask({ op: 'get', name: 'other' }), { ok: false, error: 'name-not-allowed' });
    assert.deepEqual(log, ['hello answered']);
  });
}

test('a refused requestStorageAccess leaves the answers unchanged', async () => {
  const log = [], { document, navigator } = withPermission('granted', log);
  document.requestStorageAccess = () => Promise.reject(new DOMException('refused', 'NotAllowedError'));
  const ask = bridge(document, { navigator }, log);
  assert.deepEqual(await ask({ op: 'nope' }), { ok: false, error: 'unknown-operation' });
  assert.deepEqual(await ask({ op: 'get', name: NAME }), { ok: true, value: null });
});
