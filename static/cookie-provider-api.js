/*! cookiebridge cookie-provider-api | MIT */
// The mechanisms of cookie-provider.min.js that use the bridge's JSON API: link handoff and signed identity.
// The provider loads this script (pinned by SRI) only on pages that can use them, and calls
// CookieProvider.api(context) once per provider; context c = { p: the provider, o: its options, name, url: the
// iframe URL, timeout, info(): the iframe's hello, fail(), read(), failed() }. Every function takes `until`,
// the time its provider call must settle by, and resolves with a reply { ok, value } / { ok: false, error } or
// nothing. Written for size like the provider (c = context, r = reply, u = URL).
(() => {
  const HANDOFF = 'cb-handoff='; // the fragment parameter that carries a handoff code
  const contexts = []; // one per provider that loaded this script
  let arrival; // the redemption of this page's handoff code, shared by every provider on the page

  // A handoff code arrives in the fragment (#cb-handoff=CODE). It leaves the address bar at once, so that it is
  // not bookmarked or shared; the first provider on the page redeems it.
  const [, arrivalCode] = location.hash.match(/[#&]cb-handoff=([^&]*)/) || [];
  try {
    if (arrivalCode) history.replaceState(history.state, '', location.href.split('#')[0] +
      location.hash.replace(/([#&])cb-handoff=[^&]*&?/, '$1').replace(/[#&]$/, ''));
  } catch { /* sandboxed document: the code stays visible but is single-use */ }

  // Called with CORS "simple" requests: no preflight.
  const api = async (c, path, body, until) => {
    const abort = new AbortController(), timer = setTimeout(() => abort.abort(), until - Date.now());
    try {
      const response = await fetch(new URL('api/v1/' + path, c.url),
        { method: 'POST', body: JSON.stringify(body), credentials: 'omit', signal: abort.signal });
      const data = await response.json();
      return response.ok ? { ok: true, value: data } : c.failed(data.error || 'http-' + response.status);
    } catch {
      return c.failed(abort.signal.aborted ? 'timeout' : 'unreachable');
    } finally {
      clearTimeout(timer);
    }
  };

  const token = ({ o: { identity } }) => {
    try {
      return typeof identity == 'function' ? identity() : identity;
    } catch {
      return null;
    }
  };

  // Whether links to `origin` can carry this provider's session. Handoff codes come from the bridge's JSON API; an
  // iframe page built without one (cookiebridge build) says api: false.
  const usable = (c, origin) => c.o.handoff !== false && c.info().api !== false && c.read(c.name) !== null &&
    (c.o.origins || c.info().origins || []).includes(origin);

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
    const c = contexts.find(c => usable(c, u.origin));
    return c && [c, u, link];
  };

  // Codes are reused for 45 s (the bridge keeps them 60 s by default) and dropped when used or refused.
  const codeFor = (c, origin, until) => {
    const cached = c.codes[origin], now = Date.now();
    if (cached && cached.expires > now) return cached.reply;
    const entry = c.codes[origin] = {
      expires: now + 45e3,
      reply: api(c, 'handoff', { name: c.name, value: c.read(c.name), destination: origin }, until),
    };
    entry.reply.then(r => {
      if (r.ok) entry.code = r.value.code;
      else if (c.codes[origin] == entry) delete c.codes[origin];
    });
    return entry.reply;
  };

  const decorated = (u, code) => {
    const hash = u.hash.slice(1);
    return u.href.split('#')[0] + '#' + (hash && hash + '&') + HANDOFF + code;
  };

  const prefetch = e => {
    const [c, u] = destinationOf(e) || [];
    if (c) codeFor(c, u.origin, Date.now() + c.timeout);
  };

  const onClick = e => {
    const [c, u, link] = !e.defaultPrevented && destinationOf(e) || [];
    if (!c) return;
    const cached = c.codes[u.origin], code = cached && cached.expires > Date.now() && cached.code; // once prefetched
    if (code) {
      const original = link.getAttribute('href');
      link.href = decorated(u, code);
      delete c.codes[u.origin]; // single use
      setTimeout(() => link.setAttribute('href', original));
    } else if (e.button === 0 && !e.ctrlKey && !e.metaKey && !e.shiftKey && !e.altKey &&
               (!link.target || link.target == '_self')) {
      // A new tab or window cannot be opened after waiting; those go without a code.
      e.preventDefault();
      c.p.navigate(u.href);
    }
  };

  for (const type of ['pointerdown', 'touchstart', 'focusin']) addEventListener(type, prefetch, true);
  addEventListener('click', onClick); // bubbling: the page's own handlers have had their say

  // Genesys Widgets rewrite the session cookie as the chat goes on (after every message), and when a chat ends (by
  // the customer, the agent or the server, the last with no event at all) they remove only their own state cookies.
  // So follow the cookie while the page holds a session: a new value goes to the bridge, and once the widget's state
  // cookie has gone the bridge forgets the session, so that an ended chat is not restored on the next site.
  const follow = ({ p, name, read }) => {
    let saved = read(name), live;
    setInterval(() => {
      const value = read(name), widget = /webchat\.state\.[^=]+\.session=/.test(document.cookie);
      if (value !== null && live && !widget) p.removeCookie();
      else if (value !== null && value !== saved) p.saveCookie();
      saved = value;
      live = widget;
    }, 1e3);
  };

  CookieProvider.api = c => {
    const { name } = c;
    c.codes = {}; // destination origin -> { expires, reply, code }
    contexts.push(c);
    follow(c);
    return {
      async handoff(until) {
        if (!arrivalCode) return;
        const r = await (arrival = arrival || api(c, 'handoff/redeem', { code: arrivalCode }, until));
        return r.ok ? r.value.name === name && { ok: true, value: r.value.value } : r;
      },

      async identity(until) {
        const t = token(c), r = t && await api(c, 'identity/load', { token: t, name }, until);
        return r && (r.ok ? { ok: true, value: r.value.value } : r);
      },

      async save(value, until) {
        const t = token(c);
        return t && api(c, 'identity/save', { token: t, name, value }, until);
      },

      async remove(until) {
        const t = token(c);
        c.codes = {};
        return t && api(c, 'identity/delete', { token: t, name }, until);
      },

      async decorate(href, until) {
        const u = new URL(href, location), origin = u.origin;
        if (!usable(c, origin)) return u.href;
        const r = await codeFor(c, origin, until);
        delete c.codes[origin];
        return r.ok ? decorated(u, r.value.code) : c.fail('handoff', r.error, u.href);
      },
    };
  };
})();
