/*! cookiebridge cookie-provider-resume | MIT */
// Resume through the bridge (the provider option `resume: true`): an anonymous chat continues on a site the customer
// reached by typing its address, in browsers that keep the bridge's iframe cookies apart per site.
//
// When the customer opens the chat on a page that has no session, no resume token, and an iframe whose cookie is
// not shared between the sites, the page goes to the bridge's resume page. There the bridge's own (first-party)
// cookie tells it the browser; if it holds a chat for it, it asks "Continue your conversation from domain-a.com?"
// and the customer's click is the consent; otherwise it sends the page back at once. Either way the page comes back
// with a code (#cb-resume=CODE) that only this tab can redeem: the bridge bound it to the hash of a random state the
// tab keeps in sessionStorage. The answer holds a token that this site keeps in localStorage: page views after that
// load and save the session with it (cookie-provider-api.js's accounts), so a chat started later on another site is
// there without another trip.
//
// cookie-provider-api.min.js loads this script (pinned by SRI) and calls CookieProvider.resume(context) once per
// provider with the resume option, with the ProviderContext that cookie-provider-api.js describes.
(() => {
  // This site's storage: the token (localStorage, per cookie name), the state and "open the chat when back"
  // (sessionStorage: this tab, this trip).
  const TOKEN = 'cookiebridge.resume.', STATE = 'cookiebridge.resume.state', OPEN = 'cookiebridge.resume.open';
  let answer; // the bridge's answer to this page's code, for every provider on the page

  // Web storage throws where the browser blocks it: then there is no resume, and nothing else changes.
  const storage = (area, key, value) => {
    try {
      const store = window[area];
      return value === undefined ? store.getItem(key) : value === null ? store.removeItem(key) : store.setItem(key, value);
    } catch { /* blocked */ }
  };

  const base64url = bytes => btoa(String.fromCharCode(...new Uint8Array(bytes)))
    .replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');

  /** @param {ProviderContext} context */
  CookieProvider.resume = context => {
    const { name, p: provider, resumeCode: code } = context, token = () => storage('localStorage', TOKEN + name);
    // Whether the iframe's cookie is shared by the sites; the bus plugin; this page's code, answered; whether to open
    // the chat once widgets-core has started (unknown until this page's code is answered; a WebChat command before
    // that loads the plugin too early). The widget restores a continued chat before it opens it.
    let shared, plugin, arrived, reopen = code === undefined ? false : undefined;
    const tested = provider.request({ op: 'test' }).then(r => shared = r.ok && r.value === true);

    // Whether the page goes to the bridge's resume page now (the open is then cancelled): only when nothing else can
    // bring the chat here, and the bridge says it has resume on.
    const go = () => {
      if (context.read(name) !== null || token() || shared !== false || context.info().resume !== true ||
          !crypto.subtle) return false;
      const state = base64url(crypto.getRandomValues(new Uint8Array(32)));
      storage('sessionStorage', STATE, state);
      storage('sessionStorage', OPEN, 1);
      crypto.subtle.digest('SHA-256', new TextEncoder().encode(state)).then(hash => location.assign(
        new URL('resume?' + new URLSearchParams({ to: location.href, state: base64url(hash), name }), context.url)));
      return true;
    };

    // Genesys Widgets' bus, which may come after this script: a plugin whose `before` hook on WebChat.open starts
    // the trip; back from it, the plugin opens the chat the customer asked for (an async chat that Genesys Widgets
    // restore stays closed until something opens it).
    const timer = setInterval(() => {
      const bus = window.CXBus;
      if (!plugin && bus?.registerPlugin) {
        plugin = bus.registerPlugin('CookieProviderResume.' + name);
        // Asked before the iframe has answered its cookie test: the open waits for the answer, then comes again.
        plugin.before('WebChat.open', data => shared === undefined ? (tested.then(() => plugin.command('WebChat.open')),
          false) : go() ? false : data);
      }
      if (plugin && reopen !== undefined && window._genesys?.widgets?.bus) { // widgets-core has started
        clearInterval(timer);
        if (reopen) plugin.command('WebChat.open');
      }
    }, 50); // every 50 ms until the bus is there and this page's code answered: before any customer can click

    return {
      token,

      // The customer's choice, if this page comes back from the resume page: { ok: true, value, from, via } when
      // they continued a chat, else nothing (the token is kept either way), or why not. Worked out once per provider,
      // however often loadCookie() asks.
      arrive: until => arrived ||= code === undefined ? Promise.resolve() : (async () => {
        answer ||= context.api('resume/redeem', { code, state: storage('sessionStorage', STATE) }, until);
        const r = await answer, { value, from, token: kept } = r.value || {};
        reopen = false;
        if (!r.ok || r.value.name != name) return r.ok ? undefined : r;
        storage('localStorage', TOKEN + name, kept);
        storage('sessionStorage', STATE, null);
        reopen = !!storage('sessionStorage', OPEN); // the customer asked for the chat: a continued one too
        storage('sessionStorage', OPEN, null);
        return value ? { ok: true, value, from, via: 'resume' } : undefined;
      })(),
    };
  };
})();
