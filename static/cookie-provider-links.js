/*! cookiebridge cookie-provider-links | MIT */
// Link handoff, the part that runs on the page the customer leaves: a link to another trusted site carries the
// chat session as a single-use code in its fragment (#cb-handoff=CODE). cookie-provider-api.min.js loads this
// script (pinned by SRI) once the page holds a chat session, and calls CookieProvider.links(context) once per
// provider, with the ProviderContext that cookie-provider-api.js describes and `api` (the JSON API client) added.
(() => {
  const HANDOFF = 'cb-handoff='; // the fragment parameter that carries a handoff code
  const contexts = []; // one per provider with a session

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
      reply: context.api('handoff', { name: context.name, value: context.read(context.name), destination: origin }, until),
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

  /** @param {ProviderContext} context */
  CookieProvider.links = context => {
    context.codes = {}; // destination origin -> { expires, reply, code }
    contexts.push(context);
    return {
      // The link, with a handoff code for this provider's session when it goes to another trusted site.
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
