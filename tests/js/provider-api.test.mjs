// Unit tests of static/cookie-provider-api.js (the readable source) with a stub provider context: following the
// widget's cookie, and the accounts (signed identity, resume token) that keep a session on the bridge.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import vm from 'node:vm';

const SOURCE = readFileSync(new URL('../../static/cookie-provider-api.js', import.meta.url), 'utf8');
const HERE = 'https://www.domain-a.test', BRIDGE = 'https://bridge.test';

// A page that loaded the API script; `answers` maps an API path to the JSON the bridge gives, `hash` is the page's
// fragment.
function loadPage({ cookie = '', answers = {}, resume, hash = '' } = {}) {
  const requests = [], ticks = [], appended = [];
  const page = { cookie };
  const location = new URL(HERE + '/page?q=1' + hash);
  const window = {
    CookieProvider: {}, location, URL, AbortSignal, setTimeout, JSON,
    history: { state: null, replaceState: (state, title, url) => location.href = new URL(url, location).href },
    document: { get cookie() { return page.cookie; }, createElement: () => ({}), head: { append: s => { appended.push(s); setTimeout(() => s.onload()); } } },
    setInterval: tick => ticks.push(tick), addEventListener() {}, dispatchEvent() {},
    fetch: async (url, init) => {
      const path = String(url).replace(BRIDGE + '/api/v1/', '');
      requests.push({ path, body: JSON.parse(init.body) });
      return { ok: true, status: 200, json: async () => answers[path] };
    },
  };
  window.window = window;
  vm.runInContext(SOURCE, vm.createContext(window));
  if (resume) window.CookieProvider.resume = () => resume;
  return { window, requests, ticks, appended, page };
}

const read = page => name => (page.cookie.split('; ').find(c => c.startsWith(name + '=')) || '').slice(name.length + 1) || null;

function context(page, { o = {}, calls = [] } = {}) {
  return {
    p: { saveCookie: () => calls.push('save'), removeCookie: () => calls.push('remove') }, o, name: 'session',
    url: new URL(BRIDGE + '/iframe.html'), timeout: 1000, info: () => ({}), fail() {}, read: read(page),
    failed: error => ({ ok: false, error }),
  };
}

test('the follower sends the cookie to the bridge once when it starts, then on every change, and forgets an ended chat', () => {
  const calls = [];
  const { window, ticks, page } = loadPage({ cookie: 'session=v1; _genesys.widgets.webchat.state.pureengage-v3-rest.session=S' });
  window.CookieProvider.api(context(page, { calls }));
  const [tick] = ticks;
  tick(); // the widget may have rewritten the cookie since the page's saveCookie(): send it
  tick();
  page.cookie = page.cookie.replace('v1', 'v2'); // the widget rewrote it after a message
  tick();
  page.cookie = 'session=v2'; // the chat ended: the widget removed its own state cookie, not the page's
  tick();
  assert.deepEqual(calls, ['save', 'save', 'remove']);
});

test('a page with a session loads the links script, pinned; one without does not', () => {
  const withSession = loadPage({ cookie: 'session=v1' });
  withSession.window.CookieProvider.api(context(withSession.page));
  assert.equal(withSession.appended.length, 1);
  assert.equal(String(withSession.appended[0].src), BRIDGE + '/cookie-provider-links.min.js');
  assert.equal(withSession.appended[0].crossOrigin, 'anonymous');
  const without = loadPage();
  without.window.CookieProvider.api(context(without.page));
  assert.equal(without.appended.length, 0);
});

test('an identity token loads the identity session; its reply says which account restored it', async () => {
  const { window, page, requests } = loadPage({ answers: { 'identity/load': { value: 'from-identity' } } });
  const mechanisms = window.CookieProvider.api(context(page, { o: { identity: () => 'jwt' } }));
  const reply = await mechanisms.identity(Date.now() + 1000);
  assert.deepEqual(JSON.parse(JSON.stringify(reply)), { value: 'from-identity', ok: true, via: 'identity' });
  assert.deepEqual(requests, [{ path: 'identity/load', body: { token: 'jwt', name: 'session' } }]);
});

test('with the resume option, a resume token loads, saves and deletes the session under it', async () => {
  const resume = { token: () => 'resume-token', arrive: async () => undefined };
  const { window, page, requests } = loadPage({
    resume, answers: { 'resume/load': { value: 'from-a', from: HERE }, 'resume/save': { saved: true } } });
  const mechanisms = window.CookieProvider.api(context(page, { o: { resume: true } }));
  const reply = await mechanisms.identity(Date.now() + 1000);
  assert.deepEqual(JSON.parse(JSON.stringify(reply)), { value: 'from-a', from: HERE, ok: true, via: 'resume' });
  await mechanisms.save('v2', Date.now() + 1000);
  await mechanisms.remove(Date.now() + 1000);
  assert.deepEqual(requests.map(r => [r.path, r.body.token, r.body.value]),
                   [['resume/load', 'resume-token', undefined], ['resume/save', 'resume-token', 'v2'],
                    ['resume/delete', 'resume-token', undefined]]);
});

test('without the resume option no resume token is used, even if one is stored', async () => {
  const resume = { token: () => 'resume-token', arrive: async () => undefined };
  const { window, page, requests } = loadPage({ resume });
  const mechanisms = window.CookieProvider.api(context(page));
  assert.equal(await mechanisms.identity(Date.now() + 1000), undefined);
  assert.deepEqual(requests, []);
});

test('a code leaves the address bar as the script runs; a resume code is handed to the resume script', () => {
  for (const [hash, left, resumeCode] of [
    ['#cb-handoff=C1', HERE + '/page?q=1', undefined],
    ['#reviews&cb-handoff=C1', HERE + '/page?q=1#reviews', undefined],
    ['#cb-handoff=C1&tab=2', HERE + '/page?q=1#tab=2', undefined],
    ['#cb-resume=R1', HERE + '/page?q=1', 'R1'],
    ['#reviews', HERE + '/page?q=1#reviews', undefined],
  ]) {
    const { window, page } = loadPage({ hash });
    const provider = context(page);
    window.CookieProvider.api(provider);
    assert.equal(window.location.href, left, hash);
    assert.equal(provider.resumeCode, resumeCode, hash);
  }
});
