/*! cookiebridge cookie-provider | MIT */
// Drop-in for the Genesys "persistent chat across domains" cookie-provider: same names, same arguments.
// Every method returns a Promise that resolves (never rejects) within the timeout, whatever the bridge does.
//
// Every page of every site downloads this file, and rjsmin only strips comments and whitespace, so the source is
// written for size: ES2021 (optional chaining and logical assignment; the browsers that block third-party cookies are newer), closures rather than
// objects for internal state, short names for locals (e = event, r = reply, m = mechanisms, p = provider) and terse
// warnings. Public names, options, error codes, the message protocol and the API paths are fixed.
//
// What else uses the bridge's JSON API (keeping it in step with the widget's cookie, signed identity, links that
// carry the chat, resume) lives in cookie-provider-api.min.js and the scripts it loads. This script loads it
// (pinned by SRI) only on pages that can use it: one with a chat session (there from the start, restored, or
// saved), an identity or the resume option, and one that arrived with a handoff code, once loadCookie() is done
// with the code.
// Every other page view costs this file and the iframe.
(() => {
  if (window.CookieProvider?.cookiebridge) return; // loaded twice: keep the first
  // [file, SRI integrity] of cookie-provider-api.min.js, beside the iframe page; the build puts in the hashed name.
  const API_SCRIPT = ['cookie-provider-api.min.js', ''];
  const channels = {}; // iframe URL -> channel
  let apiScript, arrival;

  // A handoff code arrives in the fragment (#cb-handoff=CODE) when the customer followed a link from another trusted
  // site. The first provider sends it to the bridge as soon as it knows the bridge, reads the answer and writes the
  // cookie: arriving costs one round trip after this script. The bridge redeems a code only for a page
  // whose referrer is the site that issued it, so a planted link (mailed, typed, or on a foreign page) restores
  // nothing. cookie-provider-api.min.js takes the code out of the address bar.
  // Such a page makes its hidden iframe only once the answer is in and the cookie written (or the code refused,
  // or the provider's timeout passed): made earlier, the frame has Chromium render the page before its <body> and
  // parse the rest of it after the answer, which then waits for both (bench/RESULTS.md).
  const [, code] = location.hash.match(/[#&]cb-handoff=([^&]+)/) || [];

  const failed = error => ({ ok: false, error }); // a reply, as the iframe and the API give them
  const after = (until, value) => new Promise(resolve => setTimeout(resolve, until - Date.now(), value));

  // This site's own (first-party) cookie, as the raw string the widget's Cookie helper wrote.
  const read = name => {
    for (const c of document.cookie.split('; ')) {
      const eq = c.indexOf('=');
      if (c.slice(0, eq) === name) return c.slice(eq + 1);
    }
    return null;
  };

  // Writes the raw value where the widget will look for it, and leaves exactly one cookie of that name: a host-only
  // copy goes when a domain-wide one is written, and removal (maxAge 0) takes both.
  const write = (name, raw, maxAge, domain) => {
    if (/[;\x00-\x1f\x7f]/.test(raw)) return false;
    const attributes = '; Path=/; SameSite=Lax' + (location.protocol == 'https:' ? '; Secure' : '');
    if (domain) document.cookie = name + '=; Max-Age=0' + attributes;
    document.cookie = name + '=' + raw + '; Max-Age=' + maxAge + attributes + (domain ? '; Domain=' + domain : '');
    return maxAge <= 0 || read(name) === raw;
  };

  // Where the widget keeps its session cookie: on a hostname, Genesys Widgets write it for the whole registrable
  // domain (Domain=domain-b.com), on an IP address or a single-label host for the host only. The registrable domain
  // is the shortest suffix of the hostname that accepts a cookie; an IP address accepts none.
  const registrable = (labels) => {
    for (let i = labels.length - 1, domain; --i > 0;) {
      if (write('__cb', '1', 9, domain = labels.slice(i).join('.'))) return write('__cb', '', 0, domain), domain;
    }
    return '';
  };

  // One hidden iframe per iframe URL, shared by every provider on the page. Requests travel on a MessageChannel
  // whose port is handed over in a hello on the frame's load event, addressed to the bridge origin: only that
  // document can take it, and requests made earlier wait in the port. Each request carries its own port for the
  // reply. The hello's reply (info: version, maxAge, origins, api) comes first. A frame that loads again (moved in
  // the DOM) gets a new channel.
  const openChannel = url => {
    const frame = document.createElement('iframe'), channel = { info: {} };
    let port;
    const connect = () => {
      const { port1, port2 } = new MessageChannel();
      (port = port1).onmessage = e => channel.info = e.data;
      return port2;
    };
    let spare = connect();
    frame.src = url;
    frame.style.cssText = 'display:none!important'; // inline and important: out of layout, focus and a11y tree, so no title
    frame.onload = () => {
      frame.contentWindow.postMessage({ cookiebridge: 1, op: 'hello' }, url.origin, [spare || connect()]);
      spare = 0;
    };
    const show = () => document.documentElement.append(frame);
    // after(answer) is a zero-delay timer (an answer as `until` gives setTimeout a NaN delay, which is 0): the frame
    // comes a task after the answer, once loadCookie() has written the cookie in its microtasks.
    arrival ? arrival.then(after).then(show) : show();
    channel.call = (request, until) => new Promise(resolve => {
      const { port1, port2 } = new MessageChannel();
      port1.onmessage = e => resolve(e.data);
      port.postMessage(request, [port2]);
      after(until, failed('timeout')).then(resolve); // a reply after this finds the promise settled
    });
    return channel;
  };

  /**
   * new CookieProvider(SESSION_COOKIE_NAME, IFRAME_URL, showThirdPartyCookieNotification)
   * The third argument may also be an options object: { onThirdPartyCookies(enabled, details),
   * onError(operation, error), timeout: ms (3000), identity: token or function, handoff: true,
   * origins: [trusted origins, if the iframe cannot tell them], cookieDomain: where to write the session cookie
   * ('' for this host only; by default the registrable domain on a hostname, where Genesys Widgets write it) }.
   */
  class CookieProvider {
    constructor(name, iframeUrl, options) {
      const o = typeof options == 'function' ? { onThirdPartyCookies: options } : options || {};
      const p = this, timeout = o.timeout > 0 ? +o.timeout : 3000;
      let channel, url, mechanisms, domain = o.cookieDomain;
      name += '';
      const store = (raw, maxAge) => write(name, raw, maxAge, domain ??= registrable(location.hostname.split('.')));
      const info = () => channel?.info || {};
      const request = async (r, until = Date.now() + timeout) => channel?.call(r, until) || failed('no-bridge');
      const fail = (operation, error, result) => {
        console.warn('cookiebridge: ' + operation + ' failed: ' + error);
        try {
          o.onError?.(operation, error);
        } catch { /* a broken callback must not break the page */ }
        return result;
      };
      // The API mechanisms for this provider, or undefined when their script did not arrive by `until`. The object
      // handed to CookieProvider.api is the ProviderContext that cookie-provider-api.js describes (p = this provider,
      // o = its options).
      const load = (until = Date.now() + timeout) => Promise.race([
        mechanisms ||= Promise.resolve(url && (apiScript ||= new Promise(resolve => {
          document.head.append(Object.assign(document.createElement('script'), {
            src: new URL(API_SCRIPT[0], url),
            integrity: API_SCRIPT[1],
            crossOrigin: '', // anonymous
            onload: () => resolve(CookieProvider.api),
            onerror: () => resolve(), // not the error event: it is not the mechanisms
          }));
        }))).then(m => m?.({ p, o, name, url, timeout, info, fail, read, failed })),
        after(until),
      ]).then(m => m || fail('handoff', 'unreachable'));

      try {
        url = new URL(iframeUrl, location);
        // A CORS "simple" request (no preflight), without credentials since the bridge is another origin, and
        // settled within the timeout, so the iframe that waits for it always comes.
        arrival ||= code && Promise.race([fetch(new URL('api/v1/handoff/redeem', url),
          { method: 'POST', body: JSON.stringify({ code, referrer: document.referrer }) })
          .then(r => r.json()).catch(() => failed('unreachable')), after(Date.now() + timeout)]);
        channel = channels[url] ||= openChannel(url);
      } catch {
        console.warn('cookiebridge: bad IFRAME_URL ' + iframeUrl);
      }

      Object.assign(p, {
        name,
        request,

        // Resolves with the restored raw value once it is written as this site's cookie, or null. Mechanisms, in
        // order: a handoff code in the URL (the customer just followed a link), the signed identity, the iframe's
        // cookie. All of them start at once, and the whole call settles within one timeout; the first mechanism in
        // that order with a session wins.
        async loadCookie() {
          const until = Date.now() + timeout, loads = [
            // The bridge's answer for this page's code: { name, value, from } or { error }.
            arrival?.then(a => a?.name == name ? { ok: 1, ...a } : a),
            mechanisms && load(until).then(m => m?.identity(until)),
            request({ op: 'get', name }, until),
          ];
          for (const mechanism of ['handoff', 'identity', 'iframe']) {
            const r = await loads.shift();
            if (r?.ok && r.value) {
              if (!store(r.value, info().maxAge || 2592e3)) break; // 30 days if the iframe did not say
              p.restoredFrom = r.via || mechanism; // identity: 'identity' or 'resume'
              load().then(m => m?.restored(p.restoredFrom, r.from)); // links now carry this session
              return r.value;
            }
            if (r?.error) fail(mechanism, r.error);
          }
          if (arrival) load(); // the API script takes the refused code out of the address bar
          return null;
        },

        // Resolves true once the bridge holds this site's current session cookie (iframe cookie and/or identity).
        async saveCookie() {
          const until = Date.now() + timeout, value = read(name);
          let ok = false;
          if (value !== null) {
            for (const r of await Promise.all([
              request({ op: 'set', name, value }, until),
              load(until).then(m => m?.save(value, until)),
            ])) if (r?.error) fail('saveCookie', r.error); else ok ||= !!r?.ok;
          }
          return ok;
        },

        // Forgets the session here and on the bridge, so an ended chat is not restored on the next domain.
        async removeCookie() {
          const until = Date.now() + timeout;
          store('', 0);
          const [r] = await Promise.all([
            request({ op: 'remove', name }, until),
            mechanisms && load(until).then(m => m?.remove(until)),
          ]);
          return r.ok || fail('removeCookie', r.error, false);
        },

        // Resolves a link to another trusted site with a handoff code for the current session (absolute), or
        // unchanged when there is no code to put on it.
        async decorate(href) {
          const until = Date.now() + timeout;
          return (await load(until))?.decorate(href, until) || href;
        },

        async navigate(href) {
          (await load())?.navigate(href) || location.assign(href);
        },

        // Resolves true only when the bridge's cookie is shared by all sites (not blocked, not partitioned). The
        // callback also gets details: whether links between the sites carry the chat, and whether identity is set.
        async cookieTest(callback) {
          const notify = callback || o.onThirdPartyCookies;
          const enabled = (await request({ op: 'test' })).value === true; // false on any failed reply
          try {
            notify?.(enabled, {
              thirdPartyCookies: enabled,
              // The hello's info may come after this reply (another port: WebKit does not order them): unknown is on.
              handoff: o.handoff !== false && info().api !== false,
              identity: !!o.identity,
            });
          } catch (error) {
            fail('cookieTest', error); // the callback threw, or is not a function
          }
          return enabled;
        },
      });
      // A page that arrived with a code loads the API script only once loadCookie() is done with the code: until
      // then it would take bandwidth and the bridge's attention from the one request that restores the chat.
      if (o.identity || o.resume || read(name) !== null) load();
    }
  }

  CookieProvider.cookiebridge = 1;

  // Genesys Widgets extension: window._genesys.widgets.extensions.CookieProviderExtension = initCookieProviderExtension(...)
  window.initCookieProviderExtension = (name, iframeUrl, options) => {
    const p = new CookieProvider(name, iframeUrl, options);
    p.loadCookie(); // now, while the widget is still loading, so the session cookie is there sooner
    // Genesys Widgets call an extension with ($, CXBus, Common).
    return Object.assign(($, CXBus) => {
      const plugin = CXBus.registerPlugin('CookieProviderExtension.' + p.name);
      // The real widget's events: there is no WebChat.ended, and WebChat.started carries no session.
      plugin.subscribe('WebChatService.started', p.saveCookie);
      plugin.subscribe('WebChatService.ended', p.removeCookie);
      plugin.subscribe('WebChatService.sessionLost', p.removeCookie);
      p.cookieTest();
    }, { provider: p });
  };
  window.CookieProvider = CookieProvider;
})();
