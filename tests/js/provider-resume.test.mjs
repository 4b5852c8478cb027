// Unit tests of static/cookie-provider-resume.js (the readable source) with a stub provider context and bus: when
// opening the chat goes to the bridge's resume page, and what coming back with a code does.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { webcrypto } from 'node:crypto';
import vm from 'node:vm';

const SOURCE = readFileSync(new URL('../../static/cookie-provider-resume.js', import.meta.url), 'utf8');
const HERE = 'https://www.domain-b.test', BRIDGE = 'https://bridge.test';

class Storage {
  constructor() { this.items = new Map(); }
  getItem(key) { return this.items.has(key) ? this.items.get(key) : null; }
  setItem(key, value) { this.items.set(key, String(value)); }
  removeItem(key) { this.items.delete(key); }
}

// A page of domain-b; `code` the resume code its address came back with (cookie-provider-api.js hands it over),
// `shared` what the iframe's cookie test says, `answer` the bridge's
// answer to resume/redeem.
function loadPage({ code, shared = false, cookie = null, resumeOn = true, answer } = {}) {
  const ticks = [], assigned = [], commands = [], hooks = {}, api = [];
  const location = new URL(HERE + '/page');
  location.assign = href => assigned.push(String(href));
  const plugin = { before: (command, hook) => hooks[command] = hook, command: name => commands.push(name) };
  const window = {
    CookieProvider: {}, location, URL, URLSearchParams, TextEncoder, Uint8Array, String, btoa, crypto: webcrypto,
    localStorage: new Storage(), sessionStorage: new Storage(),
    setInterval: tick => ticks.push(tick) && ticks.length, clearInterval: () => ticks.splice(0),
    CXBus: { registerPlugin: () => plugin }, _genesys: { widgets: { bus: {} } },
  };
  window.window = window;
  vm.runInContext(SOURCE, vm.createContext(window));
  const resume = window.CookieProvider.resume({
    p: { request: async () => ({ ok: true, value: shared }) }, o: { resume: true }, name: 'session', resumeCode: code,
    url: new URL(BRIDGE + '/iframe.html'), timeout: 1000, info: () => ({ resume: resumeOn }),
    read: () => cookie, failed: error => ({ ok: false, error }),
    api: async (path, body) => { api.push([path, JSON.parse(JSON.stringify(body))]); return answer; },
  });
  const tick = () => ticks.slice().forEach(t => t());
  return { window, resume, tick, assigned, commands, hooks, api, location };
}

const settle = () => new Promise(resolve => setTimeout(resolve, 20));

test('opening the chat with nothing to restore goes to the resume page with the hash of a kept state', async () => {
  const page = loadPage();
  await settle(); // the cookie test answered: not shared
  page.tick(); // the bus is there: the hook is registered
  assert.equal(page.hooks['WebChat.open']({}), false); // the open is cancelled
  await settle();
  const [target] = page.assigned, url = new URL(target);
  assert.equal(url.origin + url.pathname, BRIDGE + '/resume');
  assert.equal(url.searchParams.get('to'), HERE + '/page');
  assert.equal(url.searchParams.get('name'), 'session');
  const state = page.window.sessionStorage.getItem('cookiebridge.resume.state');
  const digest = Buffer.from(await webcrypto.subtle.digest('SHA-256', new TextEncoder().encode(state))).toString('base64url');
  assert.equal(url.searchParams.get('state'), digest);
  assert.match(state, /^[A-Za-z0-9_-]{43}$/);
});

test('the open goes ahead when the iframe cookie is shared, a session or a token is here, or the bridge has no resume', async () => {
  for (const options of [{ shared: true }, { cookie: 'v1' }, { resumeOn: false }]) {
    const page = loadPage(options);
    await settle();
    page.tick();
    assert.deepEqual(page.hooks['WebChat.open']({ form: 1 }), { form: 1 }, JSON.stringify(options));
    assert.deepEqual(page.assigned, []);
  }
  const page = loadPage();
  page.window.localStorage.setItem('cookiebridge.resume.session', 'token');
  await settle();
  page.tick();
  assert.deepEqual(page.hooks['WebChat.open']({}), {});
});

test('back with a code: redeemed with the kept state, the token kept', async () => {
  const page = loadPage({ code: 'CODE',
                          answer: { ok: true, value: { name: 'session', value: 'v1', from: 'https://www.domain-a.test', token: 'T' } } });
  page.window.sessionStorage.setItem('cookiebridge.resume.state', 'S');
  const reply = await page.resume.arrive(Date.now() + 1000);
  assert.deepEqual(JSON.parse(JSON.stringify(reply)), { ok: true, value: 'v1', from: 'https://www.domain-a.test', via: 'resume' });
  assert.deepEqual(page.api, [['resume/redeem', { code: 'CODE', state: 'S' }]]);
  assert.equal(page.resume.token(), 'T');
  assert.equal(page.window.sessionStorage.getItem('cookiebridge.resume.state'), null);
});

test('back without a session (Start new, or nothing held): the chat the customer asked for opens', async () => {
  const page = loadPage({ code: 'CODE',
                          answer: { ok: true, value: { name: 'session', value: null, from: null, token: 'T' } } });
  page.window.sessionStorage.setItem('cookiebridge.resume.open', '1');
  assert.equal(await page.resume.arrive(Date.now() + 1000), undefined);
  page.tick();
  assert.deepEqual(page.commands, ['WebChat.open']);
  page.tick();
  assert.deepEqual(page.commands, ['WebChat.open']); // once
});

test('a refused code (another tab, replayed) restores nothing, keeps no token and opens nothing', async () => {
  const page = loadPage({ code: 'CODE', answer: { ok: false, error: 'wrong-state' } });
  page.window.sessionStorage.setItem('cookiebridge.resume.open', '1');
  assert.deepEqual(JSON.parse(JSON.stringify(await page.resume.arrive(Date.now() + 1000))), { ok: false, error: 'wrong-state' });
  assert.equal(page.resume.token(), null);
  page.tick();
  assert.deepEqual(page.commands, []);
});
