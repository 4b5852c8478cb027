// Unit tests of static/cookie-provider-api.js (the readable source) with a stub CookieProvider: which links get a
// handoff code, and where the code goes in the link.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import vm from 'node:vm';

const SOURCE = readFileSync(new URL('../../static/cookie-provider-api.js', import.meta.url), 'utf8');
const HERE = 'https://www.domain-a.test', THERE = 'https://www.domain-b.test', BRIDGE = 'https://bridge.test';

// A page on domain-a with a chat session, the API script loaded for one provider; returns its mechanisms, the
// bridge requests made and the page's event listeners.
function loadPage(options = {}) {
  const requests = [], listeners = {};
  const fetch = async (url, init) => {
    requests.push({ url: String(url), body: JSON.parse(init.body) });
    return { ok: true, status: 200, json: async () => ({ code: 'C' + requests.length }) };
  };
  const window = {
    CookieProvider: {}, location: new URL(HERE + '/page'), history: {}, document: { cookie: '' }, fetch, URL,
    AbortSignal, setTimeout, setInterval: () => 0, addEventListener: (type, listener) => listeners[type] = listener,
  };
  window.window = window;
  vm.runInContext(SOURCE, vm.createContext(window));
  const navigated = [];
  const mechanisms = window.CookieProvider.api({
    p: { navigate: href => navigated.push(href) }, o: options, name: 'session', url: new URL(BRIDGE + '/iframe.html'),
    timeout: 1000, info: () => ({ version: 1, origins: [HERE, THERE], api: true }),
    fail: (operation, error, result) => result, read: name => name === 'session' ? 'value-1' : null,
    failed: error => ({ ok: false, error }), arrival: undefined,
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

test('two providers on a page read the one redemption answer: neither rejects, each gets its own cookie', async () => {
  const page = loadPage();
  let reads = 0;
  const response = { ok: true, status: 200, json: async () => {
    if (reads++) throw new TypeError('body stream already read');
    return { name: 'session', value: 'restored', from: HERE };
  } };
  const context = name => ({
    p: {}, o: {}, name, url: new URL(BRIDGE + '/iframe.html'), timeout: 1000, info: () => ({}),
    fail: (operation, error, result) => result, read: () => null, failed: error => ({ ok: false, error }),
    arrival: Promise.resolve(response),
  });
  const first = page.window.CookieProvider.api(context('session'));
  const second = page.window.CookieProvider.api(context('other-cookie'));
  const until = Date.now() + 1000;
  assert.deepEqual(JSON.parse(JSON.stringify(await first.handoff(until))), { ok: true, value: 'restored', from: HERE });
  assert.equal(await second.handoff(until), false); // another cookie name: not this provider's session
});

test('the follower sends the cookie to the bridge once when it starts, then on every change, and forgets an ended chat', () => {
  const ticks = [], calls = [];
  let cookie = 'session=v1; _genesys.widgets.webchat.state.pureengage-v3-rest.session=S';
  const window = {
    CookieProvider: {}, location: new URL(HERE + '/page'), history: {}, URL, AbortSignal, setTimeout,
    document: { get cookie() { return cookie; } }, setInterval: tick => ticks.push(tick), addEventListener() {},
  };
  window.window = window;
  vm.runInContext(SOURCE, vm.createContext(window));
  const read = name => (cookie.split('; ').find(c => c.startsWith(name + '=')) || '').slice(name.length + 1) || null;
  window.CookieProvider.api({
    p: { saveCookie: () => calls.push('save'), removeCookie: () => calls.push('remove') }, o: {}, name: 'session',
    url: new URL(BRIDGE + '/iframe.html'), timeout: 1000, info: () => ({}), fail() {}, read, failed() {},
  });
  const [tick] = ticks;
  tick(); // the widget may have rewritten the cookie since the page's saveCookie(): send it
  tick();
  cookie = cookie.replace('v1', 'v2'); // the widget rewrote it after a message
  tick();
  cookie = 'session=v2'; // the chat ended: the widget removed its own state cookie, not the page's
  tick();
  assert.deepEqual(calls, ['save', 'save', 'remove']);
});
