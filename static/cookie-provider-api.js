/*! cookiebridge cookie-provider-api | MIT */
// The mechanisms of cookie-provider.min.js that use the bridge's JSON API: keeping the bridge in step with the
// session cookie, signed identity, resume through the bridge, and (by loading cookie-provider-links.min.js) link
// handoff on the page the customer leaves. The provider loads this script (pinned by SRI) only on pages that can
// use them: one with a chat session, a handoff code, an identity, or the resume option. It calls
// CookieProvider.api(context) once per provider, with the ProviderContext below. Functions that take `until` (the
// time their provider call must settle by) resolve with a Reply, or with nothing.

/**
 * An answer from the iframe or the bridge's JSON API.
 * @typedef {{ ok: true, value: * } | { ok: false, error: string }} Reply
 */

/**
 * What cookie-provider.js hands this script for each of its providers. The provider and its options have one-letter
 * keys because cookie-provider.js is at its size budget.
 * @typedef {object} ProviderContext
 * @property {CookieProvider} p the provider; its request(), navigate(), saveCookie() and removeCookie() are called
 *   here
 * @property {object} o the provider's options, as given to `new CookieProvider`; read here: identity, resume, and in
 *   cookie-provider-links.js handoff, handoffPaths, origins
 * @property {string} name the session cookie's name
 * @property {URL} url the iframe URL; the bridge's JSON API and its resume page are resolved against it
 * @property {number} timeout how long a provider call may take, in ms
 * @property {() => { version?: number, maxAge?: number, origins?: string[], api?: boolean, resume?: boolean }} info
 *   the iframe's hello: {} until the iframe has answered
 * @property {(operation: string, error: string, result?: *) => *} fail warns, calls options.onError, and returns
 *   result
 * @property {(name: string) => ?string} read this site's (first-party) cookie, raw, or null
 * @property {(error: string) => Reply} failed a failed reply, { ok: false, error }
 * @property {string} [resumeCode] set by this script: the code (#cb-resume=CODE) this page's address came back with
 *   from the bridge's resume page, already out of the address bar
 * @property {(path: string, body: object, until: number) => Promise<Reply>} [api] set by this script: the JSON API
 *   client, for the scripts it loads
 */
(() => {
  // [file, SRI integrity] of the scripts this one loads, beside it; the build puts in the hashed names.
  const LINKS_SCRIPT = ['cookie-provider-links.min.js', ''], RESUME_SCRIPT = ['cookie-provider-resume.min.js', ''];
  const ACCOUNTS = ['identity', 'resume']; // where the bridge keeps a session for a token: signed identity, resume
  const scripts = {}; // file -> Promise of its entry point

  // The code this page's address arrived with: #cb-handoff=CODE (the provider redeemed it) or #cb-resume=CODE (for
  // the resume script). It leaves the address bar now, so that it is not bookmarked or shared.
  const [, kind, code] = location.hash.match(/[#&]cb-(handoff|resume)=([^&]*)/) || [];
  try {
    if (kind) history.replaceState(history.state, '', location.href.split('#')[0] +
      location.hash.replace(/([#&])cb-(handoff|resume)=[^&]*&?/, '$1').replace(/[#&]$/, ''));
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

  // A script this one loads for a provider: cookie-provider-links.min.js (link handoff from this page, once it holds
  // a session) and cookie-provider-resume.min.js (the resume option). Resolves with what its entry point on
  // CookieProvider makes of the context, or with nothing when it did not load.
  const script = (context, [file, integrity], entry) => context[entry] ||= (scripts[file] ||= new Promise(resolve => {
    document.head.append(Object.assign(document.createElement('script'), {
      src: new URL(file, context.url), integrity, crossOrigin: 'anonymous',
      onload: () => resolve(CookieProvider[entry]),
      onerror: () => resolve(), // not the error event
    }));
  })).then(start => start?.(context));
  const linksFor = context => script(context, LINKS_SCRIPT, 'links');
  const resumeFor = async context => context.o.resume && script(context, RESUME_SCRIPT, 'resume');

  // Genesys Widgets rewrite the session cookie as the chat goes on (after every message), and when a chat ends (by
  // the customer, the agent or the server, the last with no event at all) they remove only their own state cookies.
  // So follow the cookie while the page holds a session: a new value goes to the bridge, and once the widget's state
  // cookie has gone the bridge forgets the session, so that an ended chat is not restored on the next site.
  const follow = context => {
    const { p: provider, name, read } = context;
    // Nothing counts as saved at first: the widget may have rewritten the cookie between the page's saveCookie()
    // and this script's arrival, and the bridge would keep the older value until the next message.
    let saved, live;
    setInterval(() => {
      const value = read(name), widget = /webchat\.state\.[^=]+\.session=/.test(document.cookie);
      if (value !== null && live && !widget) provider.removeCookie();
      else if (value !== null && value !== saved) provider.saveCookie(), linksFor(context);
      saved = value;
      live = widget;
    }, 250); // a customer who ends a chat and follows a link at once finds it forgotten
  };

  /** @param {ProviderContext} context */
  CookieProvider.api = context => {
    const { name } = context;
    context.api = (path, body, until) => api(context, path, body, until);
    if (kind == 'resume') context.resumeCode = code;
    follow(context);
    resumeFor(context);
    if (context.read(name) !== null) linksFor(context);
    // The accounts' replies, in ACCOUNTS order: nothing for an account without a token.
    const accounts = async (operation, until, value) => Promise.all(
      [identityToken(context), (await resumeFor(context))?.token()].map((token, i) =>
        token && api(context, ACCOUNTS[i] + '/' + operation, { token, name, value }, until)));
    return {
      // Announces a restore on window: a 'cookiebridge:restored' event whose detail is { name, mechanism, from }
      // (from: the site a link came from, or where a resumed chat was last saved). Links now carry this session.
      restored(mechanism, from) {
        dispatchEvent(new CustomEvent('cookiebridge:restored', { detail: { name, mechanism, from } }));
        linksFor(context);
      },

      // loadCookie's account mechanism: the customer's choice on the bridge's resume page if this page comes from
      // there, else the session of the signed identity, else the resume token's: { ok: true, value, from?, via }
      // (via: 'identity' or 'resume'), or why not.
      async identity(until) {
        const chosen = await (await resumeFor(context))?.arrive(until);
        if (chosen) return chosen;
        for (const [i, reply] of (await accounts('load', until)).entries()) {
          if (reply && (!reply.ok || reply.value.value)) return reply.ok ? { ...reply.value, ok: true, via: ACCOUNTS[i] } : reply;
        }
      },

      save: async (value, until) => (await accounts('save', until, value)).find(reply => reply),

      async remove(until) {
        context.codes = {};
        return (await accounts('delete', until)).find(reply => reply);
      },

      decorate: async (href, until) => (await linksFor(context))?.decorate(href, until) || new URL(href, location).href,

      async navigate(href) {
        const links = await linksFor(context);
        links ? links.navigate(href) : location.assign(href);
      },
    };
  };
})();
