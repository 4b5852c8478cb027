// Unit tests of static/cookie-provider-links.js (the readable source) with a stub provider context: which links get
// a handoff code, and where the code goes in the link.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import vm from 'node:vm';

const SOURCE = readFileSync(new URL('../../static/cookie-provider-links.js', import.meta.url), 'utf8');
const HERE = 'https://www.domain-a.test', THERE = 'https://www.domain-b.test', BRIDGE = 'https://bridge.test';

// A page on domain-a with a chat session, the API script loaded for one provider; returns its mechanisms, the
// bridge requests made and the page's event listeners.
function loadPage(options = {}) {
  const requests = [], listeners = {};
  // cookie-provider-api.js's JSON API client, as the context gives it.
  const api = async (path, body) => {
    requests.push({ url: BRIDGE + '/api/v1/' + path, body: JSON.parse(JSON.stringify(body)) }); // this realm's objects
    return { ok: true, value: { code: 'C' + requests.length } };
  };
  const window = {
    CookieProvider: {}, location: new URL(HERE + '/page'), document: { cookie: '' }, URL, setTimeout,
    addEventListener: (type, listener) => listeners[type] = listener,
  };
  window.window = window;
  vm.runInContext(SOURCE, vm.createContext(window));
  const navigated = [];
  const mechanisms = window.CookieProvider.links({
    p: { navigate: href => navigated.push(href) }, o: options, name: 'session', url: new URL(BRIDGE + '/iframe.html'),
    timeout: 1000, info: () => ({ version: 1, origins: [HERE, THERE], api: true }),
    fail: (operation, error, result) => result, read: name => name === 'session' ? 'value-1' : null,
    failed: error => ({ ok: false, error }), api,
  });
  return { mechanisms, requests, listeners, navigated, window };
}

const decorate = (mechanisms, href) => mechanisms.decorate(href, Date.now() + 1000);

test('a link to another trusted site gets a code after its fragment, and the bridge is asked for it', async () => {
  const { mechanisms, requests } = loadPage();
  assert.equal(await decorate(mechanisms, THERE + '/shop?item=3#reviews'),
               THERE + '/shop?item=3#reviews&cb-handoff=C1');
  assert.equal(await decorate(mechanisms, THERE + '/shop'), THERE + '/shop#cb-handoff=C2');
  assert.deepEqual(requests[0], { url: BRIDGE + '/api/v1/handoff',
                                  body: { name: 'session', value: 'value-1', destination: THERE } });
});

test('a link whose query holds a URL or a path gets no code', async () => {
  const { mechanisms, requests } = loadPage();
  for (const href of [THERE + '/redirect?to=https://evil.test/', THERE + '/login?next=/account',
                      THERE + '/go?u=%2F%2Fevil.test', THERE + '/r?lang=en&back=%20javascript:alert(1)',
                      THERE + '/r?to=mailto:x@evil.test']) {
    assert.equal(await decorate(mechanisms, href), new URL(href).href);
  }
  assert.equal(requests.length, 0);
  assert.equal(await decorate(mechanisms, THERE + '/search?q=shoes+size:42'),
               THERE + '/search?q=shoes+size:42#cb-handoff=C1');
});

test('handoffPaths narrows the links that carry the session to those path prefixes', async () => {
  const { mechanisms, requests } = loadPage({ handoffPaths: ['/shop/', '/help'] });
  assert.equal(await decorate(mechanisms, THERE + '/shop/cart'), THERE + '/shop/cart#cb-handoff=C1');
  assert.equal(await decorate(mechanisms, THERE + '/help'), THERE + '/help#cb-handoff=C2');
  assert.equal(await decorate(mechanisms, THERE + '/blog/shop/'), THERE + '/blog/shop/');
  assert.equal(requests.length, 2);
});

test('links to this site, to an untrusted site, or that already carry a code get none', async () => {
  const { mechanisms, requests } = loadPage();
  for (const href of [HERE + '/other', 'https://evil.test/', THERE + '/#cb-handoff=OLD', 'ftp://www.domain-b.test/']) {
    assert.equal(await decorate(mechanisms, href), new URL(href).href);
  }
  assert.equal(requests.length, 0);
});

// A left click on a link, as the page's listeners get it.
function click(listeners, href, rel = '') {
  const link = { href, rel, target: '', hasAttribute: () => false, getAttribute: () => href, setAttribute() {} };
  const event = { target: { closest: () => link }, type: 'click', button: 0, defaultPrevented: false,
                  preventDefault() { this.defaultPrevented = true; } };
  listeners.pointerdown(event);
  listeners.click(event);
  return { link, event };
}

test('a redirect-shaped link is followed as it is: no code fetched, the click left alone', () => {
  const { listeners, requests, navigated } = loadPage();
  const { link, event } = click(listeners, THERE + '/redirect?to=https://evil.test/');
  assert.equal(requests.length, 0);
  assert.equal(event.defaultPrevented, false);
  assert.equal(link.href, THERE + '/redirect?to=https://evil.test/');
  assert.deepEqual(navigated, []);
});

test('a click on a trusted link before its code arrives waits for it through the provider', () => {
  const { listeners, requests, navigated } = loadPage();
  const { event } = click(listeners, THERE + '/shop');
  assert.equal(requests.length, 1); // prefetched on pointerdown
  assert.equal(event.defaultPrevented, true);
  assert.deepEqual(navigated, [THERE + '/shop']);
});

test('a rel="noreferrer" link gets no code and its click is left alone: the destination could not redeem it', () => {
  const { listeners, requests, navigated } = loadPage();
  const { event } = click(listeners, THERE + '/shop', 'external noreferrer');
  assert.equal(requests.length, 0);
  assert.equal(event.defaultPrevented, false);
  assert.deepEqual(navigated, []);
});

test('navigate() without a code goes by location, not by a link the script would take for a click to wait on', async () => {
  const page = loadPage();
  const assigned = [];
  page.mechanisms.decorate = async href => href; // the bridge gave no code
  const window = page.window;
  window.location.assign = href => assigned.push(href);
  await page.mechanisms.navigate(THERE + '/shop');
  assert.deepEqual(assigned, [THERE + '/shop']);
});
