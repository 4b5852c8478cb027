/*! cookiebridge cookie-provider-api | MIT */
// The mechanisms of cookie-provider.min.js that use the bridge's JSON API: link handoff and signed identity.
// The provider loads this script (pinned by SRI) only on pages that can use them (a page with a chat session, or
// an identity) and calls CookieProvider.api(context) once per provider, with the ProviderContext below.
// Functions that take `until` (the time their provider call must settle by) resolve with a Reply, or with nothing.

/**
 * An answer from the iframe or the bridge's JSON API.
 * @typedef {{ ok: true, value: * } | { ok: false, error: string }} Reply
 */

/**
 * What cookie-provider.js hands this script for each of its providers. The provider and its options have one-letter
 * keys because cookie-provider.js is at its size budget.
 * @typedef {object} ProviderContext
 * @property {CookieProvider} p the provider; its navigate(), saveCookie() and removeCookie() are called here
 * @property {object} o the provider's options, as given to `new CookieProvider`; read here: handoff, handoffPaths,
 *   origins, identity
 * @property {string} name the session cookie's name
 * @property {URL} url the iframe URL; the bridge's JSON API is resolved against it (api/v1/...)
 * @property {number} timeout how long a provider call may take, in ms
 * @property {() => { version?: number, maxAge?: number, origins?: string[], api?: boolean }} info the iframe's
 *   hello: {} until the iframe has answered
 * @property {(operation: string, error: string, result?: *) => *} fail warns, calls options.onError, and returns
 *   result
 * @property {(name: string) => ?string} read this site's (first-party) cookie, raw, or null
 * @property {(error: string) => Reply} failed a failed reply, { ok: false, error }
 * @property {Promise<Response> | undefined} arrival the fetch() that redeems this page's handoff code, if the page
 *   arrived with one
 * @property {Object<string, { expires: number, reply: Promise<Reply>, code?: string }>} [codes] set by this script:
 *   destination origin -> the handoff code fetched for it
 */
(() => {
  const HANDOFF = 'cb-handoff='; // the fragment parameter that carries a handoff code
  const contexts = []; // one per provider that loaded this script
  let arrival; // the bridge's answer to this page's handoff code, read once for every provider on the page

  // The provider found a handoff code in the fragment (#cb-handoff=CODE) and is redeeming it. The code leaves the
  // address bar now, so that it is not bookmarked or shared.
  try {
    if (location.hash.includes(HANDOFF)) history.replaceState(history.state, '', location.href.split('#')[0] +
      location.hash.replace(/([#&])cb-handoff=[^&]*&?/, '$1').replace(/[#&]$/, ''));
  } catch { /* sandboxed document: the code stays visible but is single-use */ }

  const reply = async (context, response) => {
    const data = await response.json();
    return response.ok ? { ok: true, value: data } : context.failed(data.error || 'http-' + response.status);
  };

  // Called with CORS "simple" requests: no preflight.
  const api = async (context, path, body, until) => {
    try {
      return await reply(context, await fetch(new URL('api/v1/' + path, context.url), {
        method: 'POST', body: JSON.stringify(body), credentials: 'omit', signal: AbortSignal.timeout(until - Date.now()),
      }));
    } catch (error) {
      return context.failed(error.name == 'TimeoutError' ? 'timeout' : 'unreachable');
    }
  };

  const identityToken = ({ o: { identity } }) => {
    try {
      return typeof identity == 'function' ? identity() : identity;
    } catch {
      return null;
    }
  };

  // Whether a link to `url` may carry this provider's session. The destination must be another trusted site, and
  // the link must not look like a redirect: a code in the fragment of /redirect?to=https://elsewhere would travel
  // on to elsewhere, whose server could redeem it. The option `handoffPaths` (path prefixes) narrows it further.
  // Handoff codes come from the bridge's JSON API; an iframe page built without one (cookiebridge build) says
  // api: false.
  const carries = (context, url) => {
    const { o: options, info } = context, paths = options.handoffPaths;
    return options.handoff !== false && info().api !== false && context.read(context.name) !== null &&
      (options.origins || info().origins || []).includes(url.origin) &&
      (!paths || paths.some(path => url.pathname.startsWith(path))) &&
      ![...url.searchParams.values()].some(value => /^\s*(\/|[a-z][\w+.-]*:)/i.test(value));
  };

  const target = (url) => {
    try {
      const u = new URL(url, location);
      if (u.origin == location.origin || !/^https?:$/.test(u.protocol) || u.hash.includes(HANDOFF)) return;
      const context = contexts.find(context => carries(context, u));
      return context && [context, u];
    } catch { /* not a URL */ }
  };

  // The link an event concerns, with its provider and URL, if it goes to another trusted site.
  const destinationOf = event => {
    const link = event.target.closest && event.target.closest('a,area'), href = link && link.href;
    // An SVG <a> has an object for href: skipped, as are downloads, and rel="noreferrer" links, on which the
    // destination could not redeem a code (the bridge's referrer gate).
    if (!href || typeof href != 'string' || link.hasAttribute('download') || /\bnoreferrer\b/i.test(link.rel)) return;
    const found = target(href);
    return found && [...found, link];
  };

  // Codes are reused for 45 s (the bridge keeps them 60 s by default) and dropped when used or refused.
  const codeFor = (context, origin, until) => {
    const cached = context.codes[origin], now = Date.now();
    if (cached && cached.expires > now) return cached.reply;
    const entry = context.codes[origin] = {
      expires: now + 45e3,
      reply: api(context, 'handoff', { name: context.name, value: context.read(context.name), destination: origin }, until),
    };
    entry.reply.then(reply => {
      if (reply.ok) entry.code = reply.value.code;
      else if (context.codes[origin] == entry) delete context.codes[origin];
    });
    return entry.reply;
  };

  // A code that was fetched and not used yet, taken (codes are single-use).
  const takeCode = (context, origin) => {
    const cached = context.codes[origin], code = cached && cached.expires > Date.now() && cached.code;
    if (code) delete context.codes[origin];
    return code;
  };

  const decorated = (url, code) => {
    const hash = url.hash.slice(1);
    return url.href.split('#')[0] + '#' + (hash && hash + '&') + HANDOFF + code;
  };

  // The destination redeems a code only when its referrer is the site that issued it. 'strict-origin' sends that
  // origin (and only it) even where the page or site sets Referrer-Policy: no-referrer; rel="noreferrer" still wins.
  const withReferrer = (link, href) => Object.assign(link, { href, referrerPolicy: 'strict-origin' });

  const prefetch = event => {
    const [context, url] = destinationOf(event) || [];
    if (context) codeFor(context, url.origin, Date.now() + context.timeout);
  };

  // Codes are fetched when a pointer presses, a finger touches or the focus lands on a link to another trusted site,
  // and put on the link when it is followed: any click or middle-click (auxclick), with or without modifier keys,
  // or Enter. A plain click in the same tab that comes before its code waits for it; a click that opens a new tab
  // or window cannot wait, and goes without a code.
  const onClick = event => {
    const [context, url, link] = !event.defaultPrevented && destinationOf(event) || [];
    if (!context) return;
    const code = takeCode(context, url.origin);
    if (code) {
      const original = link.getAttribute('href');
      withReferrer(link, decorated(url, code));
      setTimeout(() => link.setAttribute('href', original)); // the code is single-use
    } else if (event.type == 'click' && event.button === 0 && !event.ctrlKey && !event.metaKey && !event.shiftKey &&
               !event.altKey && (!link.target || link.target == '_self')) {
      event.preventDefault();
      context.p.navigate(url.href);
    }
  };

  for (const type of ['pointerdown', 'touchstart', 'focusin']) addEventListener(type, prefetch, true);
  // Bubbling: the page's own handlers have had their say.
  addEventListener('click', onClick);
  addEventListener('auxclick', onClick);

  // Genesys Widgets rewrite the session cookie as the chat goes on (after every message), and when a chat ends (by
  // the customer, the agent or the server, the last with no event at all) they remove only their own state cookies.
  // So follow the cookie while the page holds a session: a new value goes to the bridge, and once the widget's state
  // cookie has gone the bridge forgets the session, so that an ended chat is not restored on the next site.
  const follow = ({ p: provider, name, read }) => {
    // Nothing counts as saved at first: the widget may have rewritten the cookie between the page's saveCookie()
    // and this script's arrival, and the bridge would keep the older value until the next message.
    let saved, live;
    setInterval(() => {
      const value = read(name), widget = /webchat\.state\.[^=]+\.session=/.test(document.cookie);
      if (value !== null && live && !widget) provider.removeCookie();
      else if (value !== null && value !== saved) provider.saveCookie();
      saved = value;
      live = widget;
    }, 250); // a customer who ends a chat and follows a link at once finds it forgotten
  };

  /** @param {ProviderContext} context */
  CookieProvider.api = context => {
    const { name } = context;
    context.codes = {}; // destination origin -> { expires, reply, code }
    contexts.push(context);
    follow(context);
    // The signed identity's session: load, save or delete.
    const identity = async (operation, until, value) => {
      const token = identityToken(context);
      return token && api(context, 'identity/' + operation, { token, name, value }, until);
    };
    return {
      // This page's handoff code, redeemed: { ok: true, value, from: the site the link was on } for this provider's
      // cookie name, or why not.
      async handoff(until) {
        if (!context.arrival) return;
        arrival ||= context.arrival.then(response => reply(context, response)).catch(() => context.failed('unreachable'));
        const answer = await Promise.race([arrival, new Promise(resolve => setTimeout(resolve, until - Date.now()))]);
        return answer && answer.ok ? answer.value.name === name &&
          { ok: true, value: answer.value.value, from: answer.value.from } : answer;
      },

      // Announces a restore on window: a 'cookiebridge:restored' event whose detail is { name, mechanism, from }
      // (from: the site a link came from).
      restored(mechanism, from) {
        dispatchEvent(new CustomEvent('cookiebridge:restored', { detail: { name, mechanism, from } }));
      },

      async identity(until) {
        const reply = await identity('load', until);
        return reply && (reply.ok ? { ok: true, value: reply.value.value } : reply);
      },

      save: (value, until) => identity('save', until, value),

      remove(until) {
        context.codes = {};
        return identity('delete', until);
      },

      async decorate(href, until) {
        const url = new URL(href, location), found = target(url.href);
        if (!found || found[0] != context) return url.href;
        const reply = await codeFor(context, url.origin, until);
        delete context.codes[url.origin];
        return reply.ok ? decorated(url, reply.value.code) : context.fail('handoff', reply.error, url.href);
      },

      // Follows a link with a code on a link of its own (strict-origin referrer), or without one by location: a
      // link without a code would be taken for a click that waits for its code, and go round again.
      async navigate(href) {
        const url = await this.decorate(href, Date.now() + context.timeout);
        if (!url.includes(HANDOFF)) return location.assign(url);
        const link = withReferrer(document.body.appendChild(document.createElement('a')), url);
        link.click();
        link.remove();
      },
    };
  };
})();
