/* cookiebridge DEMO ONLY: not part of the Genesys guide's sample, and not needed on a real site.
 * It explains on the page what the bridge did: how the chat got here (the provider's `cookiebridge:restored`
 * event), what cookieTest() found, whether the bridge answers, and what to do when the bridge's certificate is not
 * accepted. It also tells the customer in the widget where a chat came from, as docs/link-handoff.md's snippet does.
 * It loads in <head>, before the provider, so that it hears every restore; it reads the page's provider later.
 * Test contract: window.__demoStatus = { restored: null | {name, mechanism, from}, sameSite: bool,
 *   cookieTest: null | {enabled, details}, bridge: null | 'reachable' | 'unreachable', provider: bool, done: bool,
 *   line: the mechanism line shown }.
 */
(function () {
  'use strict';
  const config = JSON.parse(document.getElementById('demo-config').textContent);
  const status = window.__demoStatus = { restored: null, sameSite: false, cookieTest: null, bridge: null,
    provider: false, done: false, line: '' };
  let missing = ''; // why nothing could be restored at all: no provider script, or no provider on the page
  const SETTLE_MS = 3500; // the provider's timeout (3000) and a margin: after it, nothing is restored any more
  const started = Date.now();
  // The session cookie before any provider wrote it: a chat already on this site (a reload, a same-site page).
  status.sameSite = document.cookie.split('; ').some((c) => c.startsWith(config.cookieName + '='));

  const siteName = (origin) => config.sites[origin] || (origin ? new URL(origin).host : 'another site');

  function mechanismLine(detail) {
    if (detail.mechanism === 'handoff') return 'Continued from ' + siteName(detail.from) + ' (link handoff)';
    if (detail.mechanism === 'identity') return 'Continued for the signed-in customer (signed identity)';
    if (detail.mechanism === 'resume') {
      return 'Continued from ' + siteName(detail.from) + ' (resume through the bridge: you chose Continue)';
    }
    return 'Continued through the bridge\'s iframe cookie (third-party cookies allowed)';
  }

  let announced = null;
  const restored = new Promise((resolve) => {
    window.addEventListener('cookiebridge:restored', function (event) {
      if (event.detail && event.detail.name === config.cookieName) resolve(event.detail);
    });
  });
  restored.then((detail) => {
    status.restored = detail;
    announced = mechanismLine(detail);
    show();
  });

  // In the widget: the same line as a system message once the widget has restored the chat.
  function tellTheWidget() {
    const bus = window.CXBus;
    if (!bus || typeof bus.registerPlugin !== 'function') return setTimeout(tellTheWidget, 50);
    const plugin = bus.registerPlugin('DemoContinuedFrom');
    plugin.subscribe('WebChatService.restored', function () {
      restored.then((detail) => {
        plugin.command('WebChat.injectMessage', { type: 'text', text: mechanismLine(detail) })
          .then(null, () => { /* the panel is closed: the page says it */ });
        if (detail.mechanism === 'handoff') {
          plugin.command('WebChatService.updateUserData', { continuedFrom: new URL(detail.from).hostname })
            .then(null, () => { /* nothing to tell the agent */ });
        }
      });
    });
  }
  tellTheWidget();

  const field = (id, text) => {
    const element = document.getElementById(id);
    if (element) element.textContent = text;
  };

  function notice(title, paragraphs) {
    const box = document.getElementById('status-notice');
    if (!box) return;
    box.replaceChildren();
    const heading = box.appendChild(document.createElement('strong'));
    heading.textContent = title;
    for (const parts of paragraphs) {
      const p = box.appendChild(document.createElement('p'));
      for (const part of parts) {
        if (typeof part === 'string') p.appendChild(document.createTextNode(part));
        else p.appendChild(Object.assign(document.createElement(part.href ? 'a' : 'code'), part));
      }
    }
    box.hidden = false;
  }

  function show() {
    if (!document.getElementById('demo-status')) return;
    if (status.restored) {
      status.line = announced;
      field('status-mechanism', announced);
      const box = document.getElementById('status-notice');
      if (box && box.dataset.kind === 'blocked') box.hidden = true;
    } else if (missing) {
      status.line = missing;
      field('status-mechanism', missing);
    } else if (status.done) {
      status.line = status.sameSite ? 'Nothing to restore: this site\'s own cookie holds the chat (same site)'
        : 'Nothing restored: a new chat';
      field('status-mechanism', status.line);
    }
    if (status.cookieTest) {
      const { enabled, details } = status.cookieTest;
      field('status-cookie-test', (enabled ? 'third-party cookies allowed: the iframe keeps the chat for every site'
        : 'third-party cookies blocked or partitioned: the iframe cannot keep the chat') +
        ' · link handoff ' + (details && details.handoff ? 'on' : 'off') +
        ' · signed identity ' + (details && details.identity ? 'on' : 'off'));
    }
    if (status.bridge) {
      field('status-bridge', status.bridge === 'reachable' ? 'reachable at ' + config.bridge
        : 'not reachable at ' + config.bridge);
    }
    if (status.done && !status.restored && !status.sameSite && status.cookieTest && !status.cookieTest.enabled) {
      blockedNotice();
    }
  }

  // The guide's showThirdPartyCookieNotification case: the chat from another site cannot follow a typed address.
  function blockedNotice() {
    const other = Object.values(config.sites).find((name) => name !== config.here) || 'another site';
    const carriers = [['Follow a link from ' + other + ' to this page: the link carries the chat (link handoff).']];
    if (config.identityPage && !config.signedIn) {
      carriers.push(['Or sign in: on the ', { href: config.identityPage, textContent: 'signed-in page' },
        ' the chat follows a typed address too (signed identity).']);
    }
    notice('This browser blocks third-party cookies, so a chat does not follow a typed address', [
      ['If you started a chat on ' + other + ', it cannot be found from here: this page offers a new chat. (The ' +
        'console\'s ',
        { textContent: 'cookiebridge: saveCookie failed: not-stored' }, ' says the same: the bridge\'s iframe cannot ' +
        'keep its cookie in this browser.)'],
      ...carriers,
    ]);
    document.getElementById('status-notice').dataset.kind = 'blocked';
  }

  function certificateNotice() {
    const ca = config.caFile ? [' Or import the demo\'s CA, ', { textContent: config.caFile },
      ', into the browser once (every run of cookiebridge demo reuses it).'] : [];
    notice('The bridge\'s script did not load, so this page cannot keep the chat', [
      ['The browser refused the bridge at ' + config.bridge + ': most likely it does not trust the demo\'s ' +
        'certificate yet. Open ', { href: config.bridge + '/healthz', textContent: config.bridge + '/healthz',
        target: '_blank', rel: 'noopener' }, ', accept the warning, and reload this page.', ...ca],
    ]);
    document.getElementById('status-notice').dataset.kind = 'certificate';
  }

  function pageProvider() {
    try {
      // The guide's sample declares `let cookieProvider` at the top level of its script.
      // eslint-disable-next-line no-undef
      if (typeof cookieProvider !== 'undefined' && cookieProvider) return cookieProvider;
    } catch (error) { /* declared but not yet initialized */ }
    const extensions = (window._genesys && window._genesys.widgets && window._genesys.widgets.extensions) || {};
    for (const key in extensions) if (extensions[key] && extensions[key].provider) return extensions[key].provider;
    return null;
  }

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  async function check() {
    if (!document.getElementById('demo-status')) return;
    fetch(config.bridge + '/healthz', { mode: 'no-cors', cache: 'no-store', credentials: 'omit' }).then(
      () => { status.bridge = 'reachable'; show(); },
      () => { status.bridge = 'unreachable'; show(); });
    if (!window.CookieProvider) { // the provider script did not load (an untrusted certificate, a dead bridge)
      missing = 'Nothing: the cookie provider did not load';
      field('status-cookie-test', 'not run: the cookie provider did not load');
      certificateNotice();
      // The guide's sample stops at `new CookieProvider(...)`, before it loads the widget: say so in its place.
      const chat = document.getElementById('chat');
      if (chat && !chat.firstChild) {
        chat.appendChild(document.createElement('p')).textContent = 'No chat widget: the page\'s script stopped ' +
          'where it creates the cookie provider (CookieProvider is not defined), because the bridge\'s script did ' +
          'not load. See the note beside.';
      }
      status.done = true;
      show();
      return;
    }
    const provider = pageProvider();
    status.provider = !!provider;
    if (!provider) {
      missing = 'Nothing: this page has no cookie provider';
      field('status-cookie-test', 'not run: this page has no cookie provider');
      status.done = true;
      show();
      return;
    }
    provider.cookieTest(function (enabled, details) {
      status.cookieTest = { enabled: enabled, details: details };
      show();
    });
    await Promise.race([restored, sleep(Math.max(0, SETTLE_MS - (Date.now() - started)))]);
    status.done = true;
    show();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', check);
  else check();
})();
