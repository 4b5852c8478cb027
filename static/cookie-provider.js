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
    var key = new URL(url, location.href).href;
    return channels[key] || (channels[key] = new Channel(key));
  }

  /**
   * new CookieProvider(SESSION_COOKIE_NAME, IFRAME_URL, showThirdPartyCookieNotification)
   * The third argument may also be an options object:
   * { onThirdPartyCookies(enabled), onError(operation, error), timeout: ms (3000), maxAge: s }.
   */
  function CookieProvider(name, iframeUrl, options) {
    if (!(this instanceof CookieProvider)) return new CookieProvider(name, iframeUrl, options);
    var opts = typeof options === 'function' ? { onThirdPartyCookies: options } : options || {};
    this.name = String(name);
    this.callback = opts.onThirdPartyCookies;
    this.onError = opts.onError;
    this.timeout = opts.timeout > 0 ? +opts.timeout : DEFAULT_TIMEOUT;
    this.maxAge = opts.maxAge > 0 ? Math.floor(opts.maxAge) : 0;
    try {
      this.channel = channelFor(iframeUrl);
    } catch (e) {
      this.channel = null;
      warn('IFRAME_URL ' + JSON.stringify(String(iframeUrl)) + ' is not a URL; expected e.g. https://bridge.example.com/iframe.html');
    }
  }

  CookieProvider.cookiebridge = VERSION;

  CookieProvider.prototype.request = function (request) {
    if (!this.channel) return Promise.resolve({ ok: false, error: 'no-bridge' });
    return this.channel.call(request, this.timeout);
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

  // Resolves with the restored raw value once it is written as this site's cookie, or null.
  CookieProvider.prototype.loadCookie = function () {
    var self = this;
    return self.request({ op: 'get', name: self.name }).then(function (reply) {
      if (!reply.ok) return self.fail('loadCookie', reply.error, null);
      if (typeof reply.value !== 'string' || !reply.value) return null;
      var maxAge = self.maxAge || self.channel.info.maxAge || DEFAULT_MAX_AGE;
      if (!writeRaw(self.name, reply.value, maxAge)) return self.fail('loadCookie', 'not-written', null);
      return reply.value;
    });
  };

  // Resolves true once the bridge holds this site's current session cookie.
  CookieProvider.prototype.saveCookie = function () {
    var self = this, raw = readRaw(self.name);
    if (raw === null) return Promise.resolve(false);
    return self.request({ op: 'set', name: self.name, value: raw }).then(function (reply) {
      return reply.ok || self.fail('saveCookie', reply.error, false);
    });
  };

  // Forgets the session here and on the bridge, so an ended chat is not restored on the next domain.
  CookieProvider.prototype.removeCookie = function () {
    var self = this;
    writeRaw(self.name, '', 0);
    return self.request({ op: 'remove', name: self.name }).then(function (reply) {
      return reply.ok || self.fail('removeCookie', reply.error, false);
    });
  };

  // Resolves true only when the bridge's cookie is shared by all sites (not blocked, not partitioned).
  CookieProvider.prototype.cookieTest = function (callback) {
    var notify = typeof callback === 'function' ? callback : this.callback;
    return this.request({ op: 'test' }).then(function (reply) {
      var enabled = reply.ok === true && reply.value === true;
      if (typeof notify === 'function') {
        try {
          notify(enabled);
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
