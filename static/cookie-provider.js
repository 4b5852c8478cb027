/*! cookiebridge cookie-provider | MIT License | https://github.com/cookiebridge/cookiebridge */
// Drop-in for the Genesys "persistent chat across domains" cookie-provider: same names, same arguments.
// Every method returns a Promise that resolves (never rejects) within the timeout, whatever the bridge does.
//
// Every page of every site downloads this file, and rjsmin only strips comments and whitespace, so the source is
// written for size: ES2018 (the fetch, AbortController and URL it needs came no earlier), closures rather than
// objects for internal state, short names for locals (e = event, r = reply, u = URL, p = provider) and terse
// warnings. Public names, options, error codes, the message protocol and the API paths are fixed.
(() => {
  if (window.CookieProvider && CookieProvider.cookiebridge) return;
  const HANDOFF = 'cb-handoff='; // the fragment parameter that carries a handoff code
  const channels = {}; // iframe URL -> channel
  const providers = [];
  let sequence = 0;

  const warn = message => console.warn('cookiebridge: ' + message);
  const failed = error => ({ ok: false, error }); // a reply, as the iframe and the API give them

  // This site's own (first-party) cookie, as the raw string the widget's Cookie helper wrote.
  const read = name => {
    for (const c of document.cookie ? document.cookie.split('; ') : []) {
      const eq = c.indexOf('=');
      if (c.slice(0, eq) === name) return c.slice(eq + 1);
    }
    return null;
  };

  const write = (name, raw, maxAge) => {
    if (/[;\x00-\x1f\x7f]/.test(raw)) return false;
    document.cookie = name + '=' + raw + '; Path=/; Max-Age=' + maxAge + '; SameSite=Lax' +
      (location.protocol == 'https:' ? '; Secure' : '');
    return maxAge <= 0 || read(name) === raw;
  };

  // One hidden iframe per iframe URL, shared by every provider on the page. Requests wait for a handshake
  // (the iframe announces itself; hellos are retried in case that was missed), so nothing sent early is lost.
  // Every message carries cookiebridge: 1, the protocol version.
  const openChannel = url => {
    const frame = document.createElement('iframe'), origin = new URL(url).origin;
    const channel = { info: {} }; // info: the iframe's hello (version, maxAge, origins, api)
    const pending = {}; // request id -> settle(reply); settle.request is the message, posted once ready
    let ready, polling;
    const post = message => {
      try {
        frame.contentWindow.postMessage(message, origin);
      } catch { /* frame removed or not yet navigated: the request times out */ }
    };
    const hello = () => post({ cookiebridge: 1, id: 'hello', op: 'hello' });
    // Retries for engines where neither the announcement nor a load event arrives; the first waits a little,
    // since a hello that reaches the iframe before its page has loaded is dropped (with a console warning).
    // It stops once no request waits.
    const retry = delay => {
      polling = setTimeout(() => {
        if (ready || !Object.keys(pending).length) return polling = 0;
        hello();
        retry(Math.min(delay * 2, 1e3));
      }, delay);
    };
    frame.src = url;
    frame.title = 'cookiebridge';
    frame.style.cssText = 'display:none!important'; // inline and important: out of layout, focus and a11y tree
    frame.onload = () => ready || hello();
    (document.body || document.documentElement).appendChild(frame);
    addEventListener('message', e => {
      const data = e.data, id = data && data.id;
      if (e.source !== frame.contentWindow || e.origin !== origin || !data || data.cookiebridge !== 1) return;
      if (id === 'ready' || id === 'hello') {
        if (!ready) {
          ready = channel.info = data.value || {}; // an object: truthy from now on
          for (const id in pending) post(pending[id].request);
        }
      } else if (typeof id == 'string' && pending[id]) {
        pending[id](data);
      }
    });
    channel.call = (request, timeout) => new Promise(resolve => {
      // Ids need only be unique per channel: replies are matched by the frame they come from.
      const id = request.id = 'r' + ++sequence;
      const settle = pending[id] = reply => {
        clearTimeout(timer);
        delete pending[id];
        resolve(reply);
      };
      const timer = setTimeout(settle, timeout, failed('timeout'));
      request.cookiebridge = 1;
      settle.request = request;
      if (ready) post(request);
      else polling || retry(300);
    });
    return channel;
  };

  // The bridge's JSON API (link handoff, signed identity), called with CORS "simple" requests: no preflight.
  const api = async (p, path, body) => {
    const abort = new AbortController(), timer = setTimeout(() => abort.abort(), p.timeout);
    try {
      const response = await fetch(p.api + path,
        { method: 'POST', body: JSON.stringify(body), credentials: 'omit', signal: abort.signal });
      const data = await response.json();
      return response.ok ? { ok: true, value: data } : failed(data.error || 'http-' + response.status);
    } catch {
      return failed(abort.signal.aborted ? 'timeout' : 'unreachable');
    } finally {
      clearTimeout(timer);
    }
  };

  // A handoff code arrives in the fragment (#cb-handoff=CODE). It leaves the address bar before any other script
  // can read or bookmark it; the first provider on the page redeems it.
  const arrival = (() => {
    const hash = location.hash, at = hash.indexOf(HANDOFF), end = at + HANDOFF.length;
    if (at < 0) return;
    const code = hash.slice(end).split('&')[0];
    const rest = (hash.slice(1, at) + hash.slice(end + code.length + 1)).replace(/^&|&$/g, '');
    try {
      history.replaceState(history.state, '', location.pathname + location.search + (rest ? '#' + rest : ''));
    } catch { /* sandboxed document: the code stays visible but is single-use */ }
    return { code };
  })();

  // Handoff codes come from the bridge's JSON API; an iframe page built without one (cookiebridge build) says api: false.
  const hasApi = p => !p.channel || p.channel.info.api !== false;

  // Links to the other trusted sites carry a fresh handoff code. Codes are fetched when the pointer or focus
  // lands on such a link and put on the link at click time; a click that comes first waits for its code.
  const destinationOf = ({ target }) => {
    const link = target.closest && target.closest('a,area'), href = link && link.href;
    let u;
    // An SVG <a> has an object for href: skipped, as are downloads and links that are no URL.
    if (!href || typeof href != 'string' || link.hasAttribute('download')) return;
    try {
      u = new URL(href, location);
    } catch {
      return;
    }
    if (u.origin == location.origin || !/^https?:$/.test(u.protocol)) return;
    const p = providers.find(p => p.handoff && hasApi(p) && read(p.name) !== null && p.origins().includes(u.origin));
    return p && [p, u, link];
  };

  // Codes are reused for 45 s (the bridge keeps them 60 s by default) and dropped when used or refused.
  const codeFor = (p, origin) => {
    const cached = p.codes[origin], now = Date.now();
    if (cached && cached.expires > now) return cached.reply;
    const entry = p.codes[origin] = {
      expires: now + 45e3,
      reply: api(p, 'handoff', { name: p.name, value: read(p.name), destination: origin }),
    };
    entry.reply.then(r => {
      if (r.ok) entry.code = r.value.code;
      else if (p.codes[origin] == entry) delete p.codes[origin];
    });
    return entry.reply;
  };

  const decorated = (u, code) => {
    const hash = u.hash.slice(1);
    return u.href.split('#')[0] + '#' + (hash && hash + '&') + HANDOFF + code;
  };

  const prefetch = e => {
    const [p, u] = destinationOf(e) || [];
    if (p) codeFor(p, u.origin);
  };

  const onClick = e => {
    const [p, u, link] = !e.defaultPrevented && destinationOf(e) || [];
    if (!p) return;
    const cached = p.codes[u.origin], code = cached && cached.expires > Date.now() && cached.code; // once prefetched
    if (code) {
      const original = link.getAttribute('href');
      link.href = decorated(u, code);
      delete p.codes[u.origin]; // single use
      setTimeout(() => link.setAttribute('href', original));
    } else if (e.button === 0 && !e.ctrlKey && !e.metaKey && !e.shiftKey && !e.altKey &&
               (!link.target || link.target == '_self')) {
      // A new tab or window cannot be opened after waiting; those go without a code.
      e.preventDefault();
      p.navigate(u.href);
    }
  };

  /**
   * new CookieProvider(SESSION_COOKIE_NAME, IFRAME_URL, showThirdPartyCookieNotification)
   * The third argument may also be an options object: { onThirdPartyCookies(enabled, details),
   * onError(operation, error), timeout: ms (3000), maxAge: s, identity: token or function, handoff: true,
   * origins: [trusted origins, if the iframe cannot tell them] }.
   */
  function CookieProvider(name, iframeUrl, options) {
    if (!(this instanceof CookieProvider)) return new CookieProvider(name, iframeUrl, options);
    const o = typeof options == 'function' ? { onThirdPartyCookies: options } : options || {};
    Object.assign(this, {
      name: String(name),
      callback: o.onThirdPartyCookies,
      onError: o.onError,
      timeout: o.timeout > 0 ? +o.timeout : 3000,
      maxAge: o.maxAge > 0 ? Math.floor(o.maxAge) : 0,
      identity: o.identity,
      handoff: o.handoff !== false,
      trusted: o.origins,
      codes: {}, // destination origin -> { expires, reply, code }
      restoredFrom: null,
      channel: null,
      api: 'about:invalid/',
    });
    try {
      const u = new URL(iframeUrl, location);
      this.channel = channels[u] || (channels[u] = openChannel(u.href));
      this.api = new URL('api/v1/', u).href;
    } catch {
      warn('bad IFRAME_URL ' + iframeUrl);
    }
    if (providers.push(this) == 1) {
      for (const type of ['pointerdown', 'touchstart', 'focusin']) addEventListener(type, prefetch, true);
      addEventListener('click', onClick); // bubbling: the page's own handlers have had their say
    }
  }

  CookieProvider.cookiebridge = 1;

  Object.assign(CookieProvider.prototype, {
    origins() {
      return this.trusted || (this.channel && this.channel.info.origins) || [];
    },

    async request(request) {
      return this.channel ? this.channel.call(request, this.timeout) : failed('no-bridge');
    },

    token() {
      const identity = this.identity;
      try {
        return typeof identity == 'function' ? identity() : identity;
      } catch {
        return null;
      }
    },

    fail(operation, error, result) {
      warn(operation + ' failed: ' + error);
      try {
        if (typeof this.onError == 'function') this.onError(operation, error);
      } catch { /* a broken callback must not break the page */ }
      return result;
    },

    // The value a handoff code in this page's URL carries for this provider's cookie, or null.
    async fromHandoff() {
      if (!arrival) return null;
      const r = await (arrival.reply = arrival.reply || api(this, 'handoff/redeem', { code: arrival.code }));
      if (!r.ok) return this.fail('handoff', r.error, null);
      return r.value.name === this.name ? r.value.value : null;
    },

    async fromIdentity() {
      const token = this.token();
      if (!token) return null;
      const r = await api(this, 'identity/load', { token, name: this.name });
      return r.ok ? r.value.value : this.fail('identity', r.error, null);
    },

    async fromFrame() {
      const r = await this.request({ op: 'get', name: this.name });
      return r.ok ? r.value : this.fail('loadCookie', r.error, null);
    },

    // Resolves with the restored raw value once it is written as this site's cookie, or null. Mechanisms, in order:
    // a handoff code in the URL (the customer just followed a link), the signed identity, the iframe's cookie.
    // All start at once, so the whole call settles within one timeout; the first in that order with a session wins.
    async loadCookie() {
      const loads = [this.fromHandoff(), this.fromIdentity(), this.fromFrame()];
      for (const mechanism of ['handoff', 'identity', 'iframe']) {
        const value = await loads.shift();
        if (typeof value == 'string' && value) {
          const maxAge = this.maxAge || (this.channel && this.channel.info.maxAge) || 2592e3; // 30 days
          if (!write(this.name, value, maxAge)) return this.fail('loadCookie', 'not-written', null);
          this.restoredFrom = mechanism; // for diagnostics: which mechanism carried the session
          return value;
        }
      }
      return null;
    },

    // Resolves true once the bridge holds this site's current session cookie (iframe cookie and/or identity).
    async saveCookie() {
      const name = this.name, value = read(name), token = this.token();
      if (value === null) return false;
      const replies = await Promise.all([
        this.request({ op: 'set', name, value }),
        token ? api(this, 'identity/save', { token, name, value }) : {},
      ]);
      let saved = false;
      for (const r of replies) if (r.error) this.fail('saveCookie', r.error); else saved = saved || !!r.ok;
      return saved;
    },

    // Forgets the session here and on the bridge, so an ended chat is not restored on the next domain.
    async removeCookie() {
      const name = this.name, token = this.token();
      write(name, '', 0);
      this.codes = {};
      const [r] = await Promise.all([
        this.request({ op: 'remove', name }),
        token && api(this, 'identity/delete', { token, name }),
      ]);
      return r.ok || this.fail('removeCookie', r.error, false);
    },

    // Resolves a link to another trusted site with a handoff code for the current session (or unchanged).
    async decorate(href) {
      const u = new URL(href, location), origin = u.origin;
      if (read(this.name) === null || !hasApi(this) || !this.origins().includes(origin)) return u.href;
      const r = await codeFor(this, origin);
      delete this.codes[origin];
      return r.ok ? decorated(u, r.value.code) : this.fail('handoff', r.error, u.href);
    },

    async navigate(href) {
      location.assign(await this.decorate(href));
    },

    // Resolves true only when the bridge's cookie is shared by all sites (not blocked, not partitioned). The
    // callback also gets details: whether links between the sites still carry the chat, and whether identity does.
    async cookieTest(callback) {
      const notify = typeof callback == 'function' ? callback : this.callback;
      const r = await this.request({ op: 'test' }), enabled = r.ok === true && r.value === true;
      try {
        if (typeof notify == 'function') notify(enabled, {
          thirdPartyCookies: enabled,
          handoff: this.handoff && !!this.channel && this.channel.info.api === true,
          identity: !!this.token(),
        });
      } catch (error) {
        warn('callback threw: ' + error);
      }
      return enabled;
    },
  });

  // Genesys Widgets extension: window._genesys.widgets.extensions.CookieProviderExtension = initCookieProviderExtension(...)
  window.initCookieProviderExtension = (name, iframeUrl, options) => {
    const p = new CookieProvider(name, iframeUrl, options);
    p.loadCookie(); // now, while the widget is still loading, so the session cookie is there sooner
    const extension = ($, CXBus) => {
      const plugin = CXBus && CXBus.registerPlugin && CXBus.registerPlugin('CookieProviderExtension.' + p.name);
      if (!plugin) return warn('no widget bus');
      plugin.subscribe('WebChat.started', () => p.saveCookie());
      plugin.subscribe('WebChat.ended', () => p.removeCookie());
      p.cookieTest();
    };
    extension.provider = p;
    return extension;
  };
  window.CookieProvider = CookieProvider;
})();
