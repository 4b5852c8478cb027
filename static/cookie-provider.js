/*! cookiebridge cookie-provider | MIT License | https://github.com/cookiebridge/cookiebridge */
// Drop-in for the Genesys "persistent chat across domains" cookie-provider: same names, same arguments.
// Every method returns a Promise that resolves (never rejects) within the timeout, whatever the bridge does.
(function (window, document) {
  'use strict';
  if (window.CookieProvider && window.CookieProvider.cookiebridge) return;
  var VERSION = 1;
  var DEFAULT_TIMEOUT = 3000;
  var DEFAULT_MAX_AGE = 30 * 24 * 3600;
  var channels = {};
  var sequence = 0;

  function warn(message) {
    if (window.console && console.warn) console.warn('cookiebridge: ' + message);
  }

  // The current site's own (first-party) cookie, as the raw string the widget's Cookie helper wrote.
  function readRaw(name) {
    var parts = document.cookie ? document.cookie.split('; ') : [];
    for (var i = 0; i < parts.length; i++) {
      var eq = parts[i].indexOf('=');
      if (parts[i].slice(0, eq) === name) return parts[i].slice(eq + 1);
    }
    return null;
  }

  function writeRaw(name, raw, maxAge) {
    if (/[;\x00-\x1f\x7f]/.test(raw)) return false;
    document.cookie = name + '=' + raw + '; Path=/; Max-Age=' + maxAge + '; SameSite=Lax' +
      (location.protocol === 'https:' ? '; Secure' : '');
    return maxAge <= 0 || readRaw(name) === raw;
  }

  // One hidden iframe per iframe URL, shared by every provider on the page. Requests wait for a handshake
  // (the iframe announces itself; hellos are retried in case that was missed), so nothing sent early is lost.
  function Channel(url) {
    var self = this;
    self.origin = new URL(url, location.href).origin;
    self.pending = {};
    self.queue = [];
    self.info = {};
    self.frame = document.createElement('iframe');
    self.frame.src = url;
    self.frame.title = 'cookiebridge';
    self.frame.setAttribute('aria-hidden', 'true');
    self.frame.tabIndex = -1;
    self.frame.style.cssText = 'display:none!important';
    self.frame.addEventListener('load', function () {
      if (!self.ready) self.hello();
    });
    (document.body || document.documentElement).appendChild(self.frame);
    window.addEventListener('message', function (event) {
      self.receive(event);
    });
  }

  Channel.prototype.post = function (request) {
    try {
      this.frame.contentWindow.postMessage(request, this.origin);
    } catch (e) { /* frame removed or not yet navigated: the request times out */ }
  };

  Channel.prototype.receive = function (event) {
    var data = event.data;
    if (event.source !== this.frame.contentWindow || event.origin !== this.origin) return;
    if (!data || typeof data !== 'object' || data.cookiebridge !== VERSION || typeof data.id !== 'string') return;
    if (data.id === 'ready' || data.id === 'hello') {
      if (!this.ready) {
        this.ready = true;
        this.info = data.value || {};
        var queued = this.queue;
        this.queue = [];
        for (var i = 0; i < queued.length; i++) this.post(queued[i]);
      }
      return;
    }
    var settle = this.pending[data.id];
    if (settle) settle(data);
  };

  Channel.prototype.hello = function () {
    this.post({ cookiebridge: VERSION, id: 'hello', op: 'hello' });
  };

  // Retries for engines where neither the announcement nor a load event arrives; the first waits a little,
  // since a hello that reaches the iframe before its page has loaded is dropped (with a console warning).
  Channel.prototype.handshake = function () {
    var self = this, delay = 300;
    if (self.polling) return;
    self.polling = true;
    setTimeout(function retry() {
      if (self.ready || !self.queue.length) {
        self.polling = false;
        return;
      }
      self.hello();
      delay = Math.min(delay * 2, 1000);
      setTimeout(retry, delay);
    }, delay);
  };

  Channel.prototype.call = function (request, timeout) {
    var self = this;
    return new Promise(function (resolve) {
      var id = 'r' + (++sequence) + '.' + Math.random().toString(36).slice(2);
      var timer = setTimeout(function () {
        settle({ ok: false, error: 'timeout' });
      }, timeout);
      function settle(reply) {
        var queued = self.queue.indexOf(request);
        if (queued >= 0) self.queue.splice(queued, 1);
        clearTimeout(timer);
        delete self.pending[id];
        resolve(reply);
      }
      request.cookiebridge = VERSION;
      request.id = id;
      self.pending[id] = settle;
      if (self.ready) {
        self.post(request);
      } else {
        self.queue.push(request);
        self.handshake();
      }
    });
  };

  function channelFor(url) {
    return channels[url] || (channels[url] = new Channel(url));
  }

  // The bridge's JSON API (link handoff, signed identity), called with CORS "simple" requests: no preflight.
  function api(base, path, body, timeout) {
    var controller = new AbortController();
    var timer = setTimeout(function () {
      controller.abort();
    }, timeout);
    return fetch(base + path, { method: 'POST', body: JSON.stringify(body), credentials: 'omit', signal: controller.signal })
      .then(function (response) {
        return response.json().then(function (data) {
          return response.ok ? { ok: true, value: data } : { ok: false, error: data.error || 'http-' + response.status };
        });
      })
      .then(null, function () {
        return { ok: false, error: controller.signal.aborted ? 'timeout' : 'unreachable' };
      })
      .then(function (reply) {
        clearTimeout(timer);
        return reply;
      });
  }

  // A handoff code arrives in the fragment (#cb-handoff=CODE). It leaves the address bar before any other script
  // can read or bookmark it; the first provider on the page redeems it.
  var HANDOFF = 'cb-handoff=';
  var MECHANISMS = ['handoff', 'identity', 'iframe'];
  var arrival = (function () {
    var hash = location.hash, at = hash.indexOf(HANDOFF);
    if (at < 0) return null;
    var code = hash.slice(at + HANDOFF.length).split('&')[0];
    var rest = (hash.slice(1, at) + hash.slice(at + HANDOFF.length + code.length + 1)).replace(/^&|&$/g, '');
    try {
      history.replaceState(history.state, '', location.pathname + location.search + (rest ? '#' + rest : ''));
    } catch (e) { /* sandboxed document: the code stays visible but is single-use */ }
    return { code: code };
  })();

  function redeemArrival(provider) {
    if (!arrival) return Promise.resolve(null);
    if (!arrival.reply) arrival.reply = api(provider.api, 'handoff/redeem', { code: arrival.code }, provider.timeout);
    return arrival.reply.then(function (reply) {
      if (!reply.ok) return provider.fail('handoff', reply.error, null);
      return reply.value.name === provider.name ? reply.value.value : null;
    });
  }

  // Links to the other trusted sites carry a fresh handoff code. Codes are fetched when the pointer or focus
  // lands on such a link and put on the link at click time; a click that comes first waits for its code.
  var providers = [];
  var CODE_LIFETIME = 45000;

  function destinationOf(link) {
    var href = link && link.href, url;
    if (!href || typeof href !== 'string' || link.hasAttribute('download')) return null;
    try {
      url = new URL(href, location.href);
    } catch (e) {
      return null;
    }
    if (url.origin === location.origin || !/^https?:$/.test(url.protocol)) return null;
    for (var i = 0; i < providers.length; i++) {
      var provider = providers[i], origins = provider.origins();
      if (provider.handoff && readRaw(provider.name) !== null && origins.indexOf(url.origin) >= 0) {
        return { provider: provider, url: url };
      }
    }
    return null;
  }

  function linkOf(event) {
    var node = event.target;
    while (node && node.nodeName !== 'A' && node.nodeName !== 'AREA') node = node.parentNode;
    return node;
  }

  function codeFor(provider, origin) {
    var cached = provider.codes[origin];
    if (cached && cached.expires > Date.now()) return cached.reply;
    var body = { name: provider.name, value: readRaw(provider.name), destination: origin };
    var entry = { reply: api(provider.api, 'handoff', body, provider.timeout), expires: Date.now() + CODE_LIFETIME };
    provider.codes[origin] = entry;
    entry.reply.then(function (result) {
      if (result.ok) entry.code = result.value.code;
      else if (provider.codes[origin] === entry) delete provider.codes[origin];
    });
    return entry.reply;
  }

  function decorated(url, code) {
    var hash = url.hash.slice(1);
    return url.href.split('#')[0] + '#' + (hash ? hash + '&' : '') + HANDOFF + code;
  }

  function prefetch(event) {
    var target = destinationOf(linkOf(event));
    if (target) codeFor(target.provider, target.url.origin);
  }

  function onClick(event) {
    var link = linkOf(event), target = !event.defaultPrevented && destinationOf(link);
    if (!target) return;
    var provider = target.provider, origin = target.url.origin, cached = provider.codes[origin];
    var code = cached && cached.expires > Date.now() && cached.code; // set once the prefetch has answered
    if (code) {
      var original = link.getAttribute('href');
      link.href = decorated(target.url, code);
      delete provider.codes[origin]; // single use
      setTimeout(function () {
        link.setAttribute('href', original);
      }, 0);
      return;
    }
    var plain = event.button === 0 && !event.ctrlKey && !event.metaKey && !event.shiftKey && !event.altKey;
    var frame = link.target && link.target !== '_self';
    if (!plain || frame) return; // a new tab or window cannot be opened after waiting; it goes without a code
    event.preventDefault();
    provider.decorate(target.url.href).then(function (href) {
      location.assign(href);
    });
  }

  function listen() {
    if (listen.done) return;
    listen.done = true;
    window.addEventListener('pointerdown', prefetch, true);
    window.addEventListener('touchstart', prefetch, true);
    window.addEventListener('focusin', prefetch, true);
    window.addEventListener('click', onClick, false); // bubbling: the page's own handlers have had their say
  }

  /**
   * new CookieProvider(SESSION_COOKIE_NAME, IFRAME_URL, showThirdPartyCookieNotification)
   * The third argument may also be an options object: { onThirdPartyCookies(enabled, details),
   * onError(operation, error), timeout: ms (3000), maxAge: s, identity: token or function, handoff: true,
   * origins: [trusted origins, if the iframe cannot tell them] }.
   */
  function CookieProvider(name, iframeUrl, options) {
    if (!(this instanceof CookieProvider)) return new CookieProvider(name, iframeUrl, options);
    var opts = typeof options === 'function' ? { onThirdPartyCookies: options } : options || {};
    this.name = String(name);
    this.callback = opts.onThirdPartyCookies;
    this.onError = opts.onError;
    this.timeout = opts.timeout > 0 ? +opts.timeout : DEFAULT_TIMEOUT;
    this.maxAge = opts.maxAge > 0 ? Math.floor(opts.maxAge) : 0;
    this.identity = opts.identity;
    this.handoff = opts.handoff !== false;
    this.trusted = opts.origins;
    this.codes = {};
    this.restoredFrom = null;
    try {
      var url = new URL(iframeUrl, location.href);
      this.api = new URL('api/v1/', url).href;
      this.channel = channelFor(url.href);
    } catch (e) {
      this.channel = null;
      this.api = 'about:invalid/';
      warn('IFRAME_URL ' + JSON.stringify(String(iframeUrl)) + ' is not a URL; expected e.g. https://bridge.example.com/iframe.html');
    }
    providers.push(this);
    listen();
  }

  CookieProvider.cookiebridge = VERSION;

  CookieProvider.prototype.origins = function () {
    return this.trusted || (this.channel && this.channel.info.origins) || [];
  };

  CookieProvider.prototype.request = function (request) {
    if (!this.channel) return Promise.resolve({ ok: false, error: 'no-bridge' });
    return this.channel.call(request, this.timeout);
  };

  CookieProvider.prototype.token = function () {
    var identity = this.identity;
    try {
      return typeof identity === 'function' ? identity() : identity;
    } catch (e) {
      return null;
    }
  };

  CookieProvider.prototype.fail = function (operation, error, result) {
    warn(operation + ' failed: ' + error);
    if (typeof this.onError === 'function') {
      try {
        this.onError(operation, error);
      } catch (e) { /* a broken callback must not break the page */ }
    }
    return result;
  };

  CookieProvider.prototype.fromIdentity = function () {
    var self = this, token = self.token();
    if (!token) return Promise.resolve(null);
    return api(self.api, 'identity/load', { token: token, name: self.name }, self.timeout).then(function (reply) {
      return reply.ok ? reply.value.value : self.fail('identity', reply.error, null);
    });
  };

  CookieProvider.prototype.fromFrame = function () {
    var self = this;
    return self.request({ op: 'get', name: self.name }).then(function (reply) {
      return reply.ok ? reply.value : self.fail('loadCookie', reply.error, null);
    });
  };

  // Resolves with the restored raw value once it is written as this site's cookie, or null. Mechanisms, in order:
  // a handoff code in the URL (the customer just followed a link), the signed identity, the iframe's cookie.
  CookieProvider.prototype.loadCookie = function () {
    var self = this, mechanisms = [redeemArrival, function (p) { return p.fromIdentity(); }, function (p) { return p.fromFrame(); }];
    function next(index) {
      if (index === mechanisms.length) return Promise.resolve(null);
      return mechanisms[index](self).then(function (value) {
        if (typeof value !== 'string' || !value) return next(index + 1);
        var maxAge = self.maxAge || (self.channel && self.channel.info.maxAge) || DEFAULT_MAX_AGE;
        if (!writeRaw(self.name, value, maxAge)) return self.fail('loadCookie', 'not-written', null);
        self.restoredFrom = MECHANISMS[index]; // for diagnostics: which mechanism carried the session
        return value;
      });
    }
    return next(0);
  };

  // Resolves true once the bridge holds this site's current session cookie (iframe cookie and/or identity).
  CookieProvider.prototype.saveCookie = function () {
    var self = this, raw = readRaw(self.name), token = self.token();
    if (raw === null) return Promise.resolve(false);
    var saves = [self.request({ op: 'set', name: self.name, value: raw })];
    if (token) saves.push(api(self.api, 'identity/save', { token: token, name: self.name, value: raw }, self.timeout));
    return Promise.all(saves).then(function (replies) {
      var saved = false;
      for (var i = 0; i < replies.length; i++) saved = replies[i].ok || self.fail('saveCookie', replies[i].error, saved);
      return saved;
    });
  };

  // Forgets the session here and on the bridge, so an ended chat is not restored on the next domain.
  CookieProvider.prototype.removeCookie = function () {
    var self = this, token = self.token();
    writeRaw(self.name, '', 0);
    self.codes = {};
    var removals = [self.request({ op: 'remove', name: self.name })];
    if (token) removals.push(api(self.api, 'identity/delete', { token: token, name: self.name }, self.timeout));
    return Promise.all(removals).then(function (replies) {
      return replies[0].ok || self.fail('removeCookie', replies[0].error, false);
    });
  };

  // Resolves a link to another trusted site with a handoff code for the current session (or unchanged).
  CookieProvider.prototype.decorate = function (href) {
    var url = new URL(href, location.href), self = this;
    if (readRaw(self.name) === null || self.origins().indexOf(url.origin) < 0) return Promise.resolve(url.href);
    return codeFor(self, url.origin).then(function (reply) {
      delete self.codes[url.origin];
      return reply.ok ? decorated(url, reply.value.code) : self.fail('handoff', reply.error, url.href);
    });
  };

  CookieProvider.prototype.navigate = function (href) {
    return this.decorate(href).then(function (decoratedHref) {
      location.assign(decoratedHref);
    });
  };

  // Resolves true only when the bridge's cookie is shared by all sites (not blocked, not partitioned). The
  // callback also gets details: whether links between the sites still carry the chat, and whether identity does.
  CookieProvider.prototype.cookieTest = function (callback) {
    var self = this, notify = typeof callback === 'function' ? callback : self.callback;
    return self.request({ op: 'test' }).then(function (reply) {
      var enabled = reply.ok === true && reply.value === true;
      var details = { thirdPartyCookies: enabled, handoff: self.handoff && !!self.channel && self.channel.info.api === true, identity: !!self.token() };
      if (typeof notify === 'function') {
        try {
          notify(enabled, details);
        } catch (e) {
          warn('the third-party cookie callback threw: ' + e);
        }
      }
      return enabled;
    });
  };

  // Genesys Widgets extension: window._genesys.widgets.extensions.CookieProviderExtension = initCookieProviderExtension(...)
  function initCookieProviderExtension(name, iframeUrl, options) {
    var provider = new CookieProvider(name, iframeUrl, options);
    provider.loadCookie(); // now, while the widget is still loading, so the session cookie is there sooner
    function extension($, CXBus) {
      var plugin = CXBus && CXBus.registerPlugin && CXBus.registerPlugin('CookieProviderExtension.' + provider.name);
      if (!plugin) return warn('could not register the CookieProviderExtension plugin on the widget bus');
      plugin.subscribe('WebChat.started', function () {
        provider.saveCookie();
      });
      plugin.subscribe('WebChat.ended', function () {
        provider.removeCookie();
      });
      provider.cookieTest();
    }
    extension.provider = provider;
    return extension;
  }

  window.CookieProvider = CookieProvider;
  window.initCookieProviderExtension = initCookieProviderExtension;
})(window, document);
