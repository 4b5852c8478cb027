// Unit tests of static/web-engagement.js: the ids' parsing and validation, the widget URL, and getIds' timeout.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import vm from 'node:vm';

const SOURCE = readFileSync(new URL('../../static/web-engagement.js', import.meta.url), 'utf8');

function loadPage(extra = {}) {
  const warnings = [];
  const window = { URL, URLSearchParams, setTimeout, clearTimeout, console: { warn: message => warnings.push(message) },
                   location: { href: 'https://www.domain-a.test/invite.html', search: '' }, ...extra };
  window.window = window;
  vm.runInContext(SOURCE, vm.createContext(window));
  return { window, context: window.WebEngagementContext, warnings };
}

// Objects of the script's realm, compared as JSON.
const plain = value => JSON.parse(JSON.stringify(value));

test('readFromLocation decodes the guide\'s parameters', () => {
  const { context } = loadPage();
  const search = '?' + new URLSearchParams({ visitId: 'a&b=c+d%é', pageId: ' 42 ', gmsScenario: 'CALLBACK-1' });
  assert.deepEqual(plain(context.readFromLocation(search)),
                   { visitID: 'a&b=c+d%é', pageID: ' 42 ', scenario: 'CALLBACK-1', engaged: true });
});

test('readFromLocation reads this page\'s query by default', () => {
  const { context } = loadPage({ location: { search: '?visitId=v1&pageId=p1' } });
  assert.deepEqual(plain(context.readFromLocation()),
                   { visitID: 'v1', pageID: 'p1', scenario: 'CHAT-NOW', engaged: true });
});

test('an invalid or missing id means no Web Engagement context', () => {
  const { context } = loadPage();
  const invalid = ['', '   ', 'a\nb', 'tab\there', 'del\u007f', 'c1\u0085', 'line\u2028sep', 'bad\ufffd', 'lone\ud800',
                   '\udc00lone', 'x'.repeat(257)];
  for (const visitId of invalid) {
    const found = context.readFromLocation('?' + new URLSearchParams({ visitId, pageId: 'p1' }));
    assert.deepEqual(plain(found), { visitID: null, pageID: null, scenario: 'CHAT-NOW', engaged: false }, visitId);
  }
  assert.equal(context.readFromLocation('?visitId=v1').engaged, false);
  for (const visitId of ['x'.repeat(256), 'emoji \ud83d\ude00', '0']) {
    assert.equal(context.readFromLocation('?' + new URLSearchParams({ visitId, pageId: 'p1' })).visitID, visitId);
  }
});

test('a scenario that does not look like CHAT-NOW falls back to it', () => {
  const { context } = loadPage();
  for (const gmsScenario of ['', '-lead', 'with space', 'x'.repeat(65), '<script>']) {
    assert.equal(context.readFromLocation('?' + new URLSearchParams({ gmsScenario })).scenario, 'CHAT-NOW');
  }
  assert.equal(context.readFromLocation('?gmsScenario=' + 'x'.repeat(64)).scenario, 'x'.repeat(64));
});

test('attachedData carries valid ids with the webengagement marker, and nothing otherwise', () => {
  const { context } = loadPage();
  assert.deepEqual(plain(context.attachedData({ visitID: 'v1', pageID: 'p1' })),
                   { visitID: 'v1', pageID: 'p1', webengagement: '' });
  assert.deepEqual(plain(context.attachedData({ visitId: 7, pageId: 'p1' }, 'invite')),
                   { visitID: '7', pageID: 'p1', webengagement: 'invite' });
  for (const bad of [undefined, null, 'v1', {}, { visitID: 'v1' }, { visitID: 'v1', pageID: NaN },
                     { visitID: null, visitId: 'v1', pageID: 'p1' }]) {
    assert.deepEqual(plain(context.attachedData(bad)), {});
  }
});

test('buildWidgetUrl sets the ids and the scenario, keeps other parameters and replaces stale ids', () => {
  const { context } = loadPage();
  const url = context.buildWidgetUrl('/widget.html?lang=fr&visitId=old&pageId=old', { visitID: 'v 1&', pageID: 'p1' });
  assert.equal(url, 'https://www.domain-a.test/widget.html?lang=fr&visitId=v+1%26&pageId=p1&gmsScenario=CHAT-NOW');
  assert.equal(context.buildWidgetUrl('https://gms.test/w?visitId=old', null, 'CALLBACK'),
               'https://gms.test/w?gmsScenario=CALLBACK');
});

test('buildWidgetUrl answers null for a base that is not a URL', () => {
  const { context, warnings } = loadPage();
  assert.equal(context.buildWidgetUrl('https://[', {}), null);
  assert.equal(warnings.length, 1);
});

test('getIds resolves with null after the timeout when _gt is absent, leaving the request in its queue', async () => {
  const { window, context } = loadPage();
  const started = Date.now();
  assert.equal(await context.getIds(50), null);
  assert.ok(Date.now() - started >= 45, 'resolved before the timeout');
  assert.equal(window._gt.length, 1);
  assert.equal(window._gt[0][0], 'getIDs');
});

test('getIds resolves with the ids the Monitoring agent answers, and null for nonsense', async () => {
  const answering = ids => ({ push: ([command, callback]) => command === 'getIDs' && callback(ids) });
  assert.deepEqual(plain(await loadPage({ _gt: answering({ visitID: 'v1', pageID: 'p1' }) }).context.getIds(50)),
                   { visitID: 'v1', pageID: 'p1' });
  assert.equal(await loadPage({ _gt: answering({ visitID: 'v\n1', pageID: 'p1' }) }).context.getIds(50), null);
  assert.equal(await loadPage({ _gt: {} }).context.getIds(50), null);
  const { context, warnings } = loadPage({ _gt: { push: () => { throw new Error('broken'); } } });
  assert.equal(await context.getIds(50), null);
  assert.equal(warnings.length, 1);
});

test('getIds waits 2 s unless given a positive timeout', async () => {
  const delays = [];
  const { context } = loadPage({ setTimeout: (callback, delay) => (delays.push(delay), setTimeout(callback, 0)) });
  for (const timeout of [undefined, 0, -5, 'soon', '30']) assert.equal(await context.getIds(timeout), null);
  assert.deepEqual(delays, [2000, 2000, 2000, 2000, 30]);
});
