/* TEST DOUBLE of Genesys Widgets 9.0.018 (CXBus + WebChat + WebChatService, "pureengage-v3-rest" transport).
 * This is NOT Genesys code and contains none of it: it is cookiebridge's own small model of the behaviour the
 * provider, the extension, the chat finalizer, the demo and the browser tests depend on, written from measured facts
 * about the real library. It talks to cookiebridge's demo chat server (the Digital Channels chat API subset).
 *
 * Test contract: window.__widgetDouble = { state: 'idle'|'form'|'restoring'|'started'|'restored'|'ended'|'lost',
 *   sessionId, participantId, token, sessionData (the last object given to getSessionData), restoredFrom:
 *   null|'same-domain'|'cross-domain', events: [every bus event name, in order], requests: ['POST /path', ...]
 *   (method and path without query), injected: [data of every accepted WebChat.injectMessage] }.
 * Knobs, set before this script loads: window.__widgetDoubleConfig = { loadDelay: ms that loadPlugin takes to
 *   "download" (default 1500), pollTimeout: ms between a poll's answer and the next poll (default: the transport's
 *   pollTimeout, else 3000 as the real library; at least 100) }.
 */
(function (window, document) {
  'use strict';
  if (window.CXBus && window.CXBus.isTestDouble) return;

  const knobs = window.__widgetDoubleConfig || {};
  const LOAD_DELAY = typeof knobs.loadDelay === 'number' ? knobs.loadDelay : 1500;
  const TRANSPORT = 'pureengage-v3-rest';
  const OTHER_TRANSPORTS = ['purecloud-v2-sockets', 'pureconnect-v4-rest', 'pureconnect-v4-chatbots'];
  const STATE = '_genesys.widgets.webchat.state';
  const OWN = { session: STATE + '.' + TRANSPORT + '.session', keys: STATE + '.' + TRANSPORT + '.keys',
    index: STATE + '.' + TRANSPORT + '.index', open: STATE + '.open' };
  const OPEN_NAME = STATE + '.' + TRANSPORT + '.open'; // the first argument setSessionData receives
  const PAGE_SIZE = 20;
  const AJAX_TIMEOUT = 9000;
  const POLL_MULTIPLIER = 1.2;

  const model = window.__widgetDouble = { state: 'idle', sessionId: null, participantId: null, token: null,
    sessionData: null, restoredFrom: null, events: [], requests: [], injected: [] };

  function report(error) {
    setTimeout(function () { throw error; }, 0); // uncaught, as in the real library, without breaking this flow
  }

  function genesysWidgets() {
    const genesys = window._genesys = window._genesys || {};
    return (genesys.widgets = genesys.widgets || {});
  }
  const webchatConfig = () => genesysWidgets().webchat || {};
  const transportConfig = () => webchatConfig().transport || {};
  const mainConfig = () => genesysWidgets().main || {};

  // ---- js-cookie 2.2.1 semantics (the Cookie object the hooks receive) -------------------------------------

  function cookieApi(converter) {
    const decode = (text) => text.replace(/(%[0-9A-Z]{2})+/g, decodeURIComponent);
    function extend() {
      const out = {};
      for (let i = 0; i < arguments.length; i++) for (const key in arguments[i]) out[key] = arguments[i][key];
      return out;
    }
    function api() { /* js-cookie 2.2 exposes a no-op function carrying the methods */ }
    function set(key, value, attributes) {
      attributes = extend({ path: '/' }, api.defaults, attributes);
      if (typeof attributes.expires === 'number') attributes.expires = new Date(Date.now() + attributes.expires * 864e5);
      attributes.expires = attributes.expires ? attributes.expires.toUTCString() : '';
      try {
        const json = JSON.stringify(value);
        if (/^[{[]/.test(json)) value = json;
      } catch (e) { /* left as given */ }
      value = converter.write ? converter.write(value, key) : encodeURIComponent(String(value))
        .replace(/%(23|24|26|2B|3A|3C|3E|3D|2F|3F|40|5B|5D|5E|60|7B|7D|7C)/g, decodeURIComponent);
      key = encodeURIComponent(String(key)).replace(/%(23|24|26|2B|5E|60|7C)/g, decodeURIComponent)
        .replace(/[()]/g, escape);
      let written = '';
      for (const name in attributes) {
        if (!attributes[name]) continue;
        written += '; ' + name; // names as given: `samesite` and `sameSite` are both written verbatim
        if (attributes[name] !== true) written += '=' + attributes[name].split(';')[0];
      }
      return (document.cookie = key + '=' + value + written);
    }
    function get(key, json) {
      const jar = {};
      const cookies = document.cookie ? document.cookie.split('; ') : [];
      for (let i = 0; i < cookies.length; i++) {
        const parts = cookies[i].split('=');
        let cookie = parts.slice(1).join('=');
        if (!json && cookie.charAt(0) === '"') cookie = cookie.slice(1, -1);
        try {
          const name = decode(parts[0]);
          cookie = (converter.read || converter)(cookie, name) || decode(cookie);
          if (json) {
            try { cookie = JSON.parse(cookie); } catch (e) { /* kept as text */ }
          }
          jar[name] = cookie;
          if (key === name) break; // the first match wins
        } catch (e) { /* not decodable: skipped */ }
      }
      return key ? jar[key] : jar;
    }
    api.set = set;
    api.get = (key) => get(key, false);
    api.getJSON = (key) => get(key, true);
    api.remove = (key, attributes) => { set(key, '', extend(attributes, { expires: -1 })); };
    api.defaults = {};
    api.withConverter = cookieApi;
    return api;
  }
  const Cookie = cookieApi(function () {});

  // ---- CookieOptions: the registrable domain the way the real library finds it (URI.js domain()) -----------

  // A few public second-level suffixes (URI.js keeps a longer list); enough for the hosts tests use.
  const SECOND_LEVEL = { uk: 'ac co gov ltd me net nhs org plc police sch', au: 'asn com edu gov id net org',
    nz: 'ac co geek gen govt net org school', jp: 'ac ad co ed go gr lg ne or', br: 'com edu gov net org',
    in: 'ac co edu gov net org', za: 'ac co edu gov net org', il: 'ac co gov net org', kr: 'ac co go ne or' };

  function registrableDomain(host) {
    if (!host || /^\d{1,3}(\.\d{1,3}){3}$/.test(host) || host.indexOf(':') >= 0 || host.charAt(0) === '[') return '';
    const labels = host.split('.');
    if (labels.length < 3) return host; // one dot or none: the host itself
    const tld = labels[labels.length - 1], sld = labels[labels.length - 2];
    const known = SECOND_LEVEL[tld.toLowerCase()];
    const suffix = known && (' ' + known + ' ').indexOf(' ' + sld.toLowerCase() + ' ') >= 0 ? sld + '.' + tld : tld;
    const end = host.length - suffix.length - 1;
    return host.substring(host.lastIndexOf('.', end - 1) + 1);
  }
  const DOMAIN = registrableDomain(location.hostname);
  const HAS_DOMAIN = DOMAIN.split('.').length > 1;

  function sameSite() {
    const options = mainConfig().cookieOptions;
    return (options && options.sameSite) || 'strict';
  }
  function cookieOptions() {
    return HAS_DOMAIN ? { domain: '.' + DOMAIN, path: '/', samesite: sameSite() } : { samesite: sameSite() };
  }

  // The widget's own state cookies (prefixed with main.deploymentID when set).
  function ownName(name) {
    const id = mainConfig().deploymentID;
    return id ? id + '.' + name : name;
  }
  function ownAttributes() {
    return Object.assign({}, HAS_DOMAIN ? { domain: '.' + DOMAIN, path: '/' } : {}, { sameSite: sameSite() },
      mainConfig().cookieOptions || {});
  }
  const own = {
    set: (name, value) => Cookie.set(ownName(name), value, ownAttributes()),
    get: (name) => Cookie.get(ownName(name)),
    remove: (name) => Cookie.remove(ownName(name), ownAttributes())
  };

  // ---- the bus -----------------------------------------------------------------------------------------------

  const plugins = {};     // namespace -> { ready, commands, buffer, iface }
  const subscribers = {}; // event -> [callback]
  const republished = {}; // event -> data, replayed to late subscribers (the `ready` events)
  const CORE_PLUGINS = ['App', 'WebChat', 'WebChatService'];
  let coreStarted = false;
  let busConfig = {};

  function publish(publisher, event, data, keep) {
    model.events.push(event);
    if (busConfig.debug && window.console) console.debug('[widgets double] ' + event, data);
    if (keep) republished[event] = data || {};
    const list = (subscribers[event] || []).slice();
    for (let i = 0; i < list.length; i++) deliver(list[i], event, publisher, data || {});
  }
  function deliver(callback, event, publisher, data) {
    // Asynchronous, as CXBus delivers; a subscriber's exception stays uncaught.
    setTimeout(function () { callback({ time: Date.now(), publisher: publisher, event: event, data: data }); }, 0);
  }
  function subscribe(event, callback) {
    if (typeof event !== 'string' || typeof callback !== 'function') return false;
    (subscribers[event] = subscribers[event] || []).push(callback);
    if (event in republished) deliver(callback, event, event.split('.')[0], republished[event]);
    return event;
  }
  function unsubscribe(event) {
    delete subscribers[event];
    return true;
  }

  // CXBus `before` hooks: each gets the command's data and returns it (changed or not); a hook that returns false
  // (anything not an object) cancels the command, which then rejects, as the real bus does.
  const befores = {};
  function before(name, hook) {
    if (typeof name !== 'string' || typeof hook !== 'function') return false;
    (befores[name] = befores[name] || []).push(hook);
    return true;
  }

  function command(commander, name, data) {
    if (typeof name === 'string' && name.split('.').length === 1) name = commander + '.' + name;
    const parts = String(name).split('.');
    data = data || {};
    for (const hook of befores[name] || []) if (data && typeof data === 'object') data = hook(data);
    if (!data || typeof data !== 'object') { // a rejected jQuery deferred, which nobody has to catch
      const cancelled = Promise.reject('Command ' + name + ' cancelled by a before hook');
      cancelled.catch(() => {});
      return cancelled;
    }
    return new Promise(function (resolve, reject) {
      const plugin = plugins[parts[0]];
      const run = function () {
        const handler = plugin.commands[parts[1]];
        if (!handler) return reject('Command does not exist');
        Promise.resolve().then(() => handler(data || {}, commander)).then(resolve, reject);
      };
      if (plugin && plugin.ready) setTimeout(run, 0);
      else if (plugin) plugin.buffer.push(run);
      else if (CORE_PLUGINS.indexOf(parts[0]) >= 0 && !coreStarted) {
        loadPlugin('widgets-core').then(() => command(commander, name, data)).then(resolve, reject);
      } else setTimeout(() => reject('Could not load plugin file in given location. Check your plugins path option.'), 0);
    });
  }

  function registerPlugin(name) {
    if (typeof name !== 'string' || !name || plugins[name]) return false;
    const plugin = plugins[name] = { ready: false, commands: {}, buffer: [], data: {} };
    plugin.iface = {
      name: name,
      publish: (event, data) => publish(name, name + '.' + event, data),
      republish: (event, data) => publish(name, name + '.' + event, data, true),
      subscribe: subscribe,
      unsubscribe: unsubscribe,
      command: (commandName, data) => command(name, commandName, data),
      before: before,
      registerCommand: function (commandName, handler) { plugin.commands[commandName] = handler; return true; },
      registerEvents: () => true,
      data: function (key, value) {
        if (arguments.length > 1) plugin.data[key] = value;
        return plugin.data[key];
      },
      ready: function () {
        plugin.ready = true;
        plugin.buffer.splice(0).forEach((run) => setTimeout(run, 0));
      }
    };
    return plugin.iface;
  }

  const loading = {};
  function loadPlugin(name) {
    if (!loading[name]) {
      loading[name] = new Promise(function (resolve) {
        setTimeout(function () {
          if (name === 'widgets-core' && !coreStarted) startCore();
          resolve();
        }, LOAD_DELAY);
      });
    }
    return loading[name];
  }

  const bus = { registerPlugin: registerPlugin, subscribe: subscribe, unsubscribe: unsubscribe,
    publish: (event, data) => publish('CXBus', event, data), command: (name, data) => command('CXBus', name, data) };
  const CXBus = Object.assign({ isTestDouble: true, version: 'widgets-double',
    configure: function (options) { busConfig = Object.assign({}, options); }, loadPlugin: loadPlugin }, bus);

  // ---- HTTP, as the transport's jQuery requests: form bodies, no credentials ----------------------------------

  function param(object) { // jQuery.param (jQuery 3: %20 stays %20)
    const parts = [];
    const add = (key, value) => {
      if (typeof value === 'function') value = value();
      parts.push(encodeURIComponent(key) + '=' + encodeURIComponent(value == null ? '' : value));
    };
    const build = function (prefix, value) {
      if (Array.isArray(value)) {
        value.forEach((item, i) => build(prefix + '[' + (item && typeof item === 'object' ? i : '') + ']', item));
      } else if (value && typeof value === 'object') {
        for (const key in value) build(prefix + '[' + key + ']', value[key]);
      } else add(prefix, value);
    };
    for (const key in object) build(key, object[key]);
    return parts.join('&');
  }

  function guid() {
    return 'xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx'.replace(/[xy]/g, function (c) {
      const r = Math.random() * 16 | 0;
      return (c === 'x' ? r : (r & 3) | 8).toString(16);
    });
  }

  // Resolves with the JSON answer of a 2xx; rejects with an xhr-like {status, responseJSON, responseText}.
  // `headers` is a function, called first (as the real getHeaders): if a hook throws, no request is made.
  function request(method, url, data, headers, timeout) {
    let sent;
    try {
      sent = headers();
    } catch (error) {
      report(error);
      return Promise.reject({ status: 0, hookError: error, responseText: '' });
    }
    const target = new URL(url, location.href);
    model.requests.push(method + ' ' + target.pathname);
    const init = { method: method, headers: Object.assign({}, sent), credentials: 'omit', mode: 'cors' };
    if (data) {
      init.headers['Content-Type'] = 'application/x-www-form-urlencoded; charset=UTF-8';
      init.body = param(data);
    }
    let timer = null;
    if (timeout && typeof AbortController === 'function') {
      const controller = new AbortController();
      init.signal = controller.signal;
      timer = setTimeout(() => controller.abort(), timeout);
    }
    return fetch(target.href, init).then(function (response) {
      return response.text().then(function (text) {
        clearTimeout(timer);
        let json;
        try { json = JSON.parse(text); } catch (e) { json = undefined; }
        const xhr = { status: response.status, statusText: response.statusText, responseJSON: json, responseText: text };
        if (!response.ok || json === undefined) throw xhr;
        return json;
      });
    }, function () {
      clearTimeout(timer);
      throw { status: 0, statusText: 'error', responseText: '' };
    });
  }

  // ---- WebChatService: the pureengage-v3-rest transport ------------------------------------------------------

  const svc = { mode: 'legacy', plugin: null, active: false, restoring: false, session: {}, index: 0, seen: {},
    polling: false, pollPending: false, pollError: false, pollTimer: null, generation: 0, interval: 3000,
    delay: 3000, disconnected: false };

  function transportMode() {
    const type = transportConfig().type;
    if (!type) return 'legacy';
    if (type === TRANSPORT) return transportConfig().async && transportConfig().async.enabled === true ? 'async' : 'plain';
    return OTHER_TRANSPORTS.indexOf(type) >= 0 ? 'unsupported' : 'invalid';
  }
  function hooks() {
    const async = transportConfig().async;
    return svc.mode === 'async' && async && typeof async.getSessionData === 'function' &&
      typeof async.setSessionData === 'function' ? async : null;
  }
  const dataURL = () => transportConfig().dataURL || webchatConfig().dataURL || '';

  function syncModel() {
    model.sessionId = svc.session.sessionId || model.sessionId;
    model.participantId = svc.session.participantId || model.participantId;
  }
  function setState(state) {
    model.state = state;
    view.refresh();
  }

  // setSessionData: a non-empty string other than "undefined" is JSON.parse'd (and may throw), a non-empty
  // object is used as is, anything else means no session.
  function customerToken() {
    const async = hooks();
    if (!async) return false;
    const raw = async.setSessionData(OPEN_NAME, Cookie, cookieOptions());
    if (raw !== 'undefined' && raw && typeof raw === 'string' && raw.length > 0) return JSON.parse(raw);
    return !!(raw && typeof raw === 'object' && Object.keys(raw).length) && raw;
  }
  function tokenHeaders() {
    const headers = Object.assign({}, transportConfig().headers);
    if (svc.mode === 'async') headers['x-nexus-client-key'] = String(customerToken().token);
    else headers['x-nexus-client-key'] = String(svc.mode === 'plain' ? own.get(OWN.keys) : svc.session.token);
    return headers;
  }

  function updateCustomerToken() { // getSessionData, only while the transport holds a token
    const async = hooks();
    if (!async || !svc.session.token) return;
    const data = { messageIndex: svc.index, token: svc.session.token };
    model.sessionData = data;
    try {
      async.getSessionData(data, Cookie, cookieOptions());
    } catch (error) {
      report(error);
    }
  }
  function updateSessionCookies() {
    if (svc.mode === 'legacy') return;
    if (svc.mode === 'async') updateCustomerToken();
    else own.set(OWN.keys, svc.session.token);
    own.set(OWN.session, svc.session.sessionId);
  }
  function decodeToken(token) {
    return token ? JSON.parse(atob(token.split('.')[1])) : {};
  }
  function acceptToken(token) {
    svc.session = decodeToken(token);
    svc.session.token = token;
    model.token = token;
    syncModel();
  }

  function formData(form, userData) {
    const ua = navigator.userAgent;
    const browser = /Edg\//.test(ua) ? 'Edge' : /Chrome\//.test(ua) ? 'Chrome' : /Firefox\//.test(ua) ? 'Firefox'
      : /Safari\//.test(ua) ? 'Safari' : 'Unknown';
    const os = /Windows/.test(ua) ? 'Windows' : /Mac OS/.test(ua) ? 'Mac' : /Android/.test(ua) ? 'Android'
      : /Linux/.test(ua) ? 'Linux' : 'Unknown';
    const base = { endpoint: transportConfig().endpoint, userData: Object.assign({}, webchatConfig().userData, {
      _genesys_source: 'web', _genesys_referrer: document.referrer, _genesys_url: location.href,
      _genesys_pageTitle: document.title, _genesys_browser: browser, _genesys_OS: os }) };
    let data = base;
    if (form) {
      const rest = Object.assign({}, form);
      delete rest.firstname; delete rest.lastname; delete rest.nickname;
      if (form.userData && typeof form.userData === 'object') base.userData = Object.assign({}, base.userData, form.userData);
      data = Object.assign({ firstName: form.firstname, lastName: form.lastname,
        nickname: form.nickname || form.firstname || form.firstName }, base, rest);
    }
    data.userData = Object.assign({}, data.userData, userData || {});
    return data;
  }

  // Errors: INVALID_SESSION or 404 (and 401 during a restore) lose the session; others are WebChatService.error.
  function handleError(xhr) {
    const json = (xhr && xhr.responseJSON) || {};
    const status = json.status || {};
    if (status.code === 'INVALID_SESSION' || (xhr && xhr.status === 404)) return sessionLost(xhr);
    if (svc.restoring && xhr && xhr.status === 401) return sessionLost(xhr);
    svc.plugin.publish('error', { errors: [{ code: TRANSPORT + '-' + (status.code || ''), text: status.message || '',
      response: xhr }] });
  }
  function sessionLost(xhr) {
    const async = transportConfig().async;
    if (svc.mode === 'async' && async && typeof async.deleteSessionData === 'function') {
      try {
        async.deleteSessionData({ sessionData: svc.session, response: xhr }, Cookie, cookieOptions());
      } catch (error) {
        report(error);
      }
    }
    svc.restoring = false;
    svc.plugin.publish('sessionLost', xhr);
    svc.plugin.publish('error', { errors: [xhr] });
    terminate();
    setState('lost');
    webchat.settled('lost');
  }
  function terminate() { // the transport forgets the chat: own cookies, polling, seen messages
    own.remove(OWN.session);
    own.remove(OWN.keys);
    own.remove(OWN.index);
    stopPoll();
    svc.active = false;
    svc.session = {};
    svc.seen = {};
  }

  function startChat(data) {
    if (svc.active) return Promise.reject('There is already an active chat session');
    if (svc.mode === 'invalid' || svc.mode === 'unsupported') {
      return Promise.reject('widgets double: transport type ' + transportConfig().type + ' is not modelled');
    }
    const headers = function () {
      const sent = Object.assign({}, transportConfig().headers);
      const saved = customerToken(); // a stale token of the page is sent too, as the real widget does
      if (saved && saved.token) sent['x-nexus-client-key'] = saved.token;
      return sent;
    };
    const body = { data: formData(data.form, data.userData), operationId: guid() };
    return request('POST', dataURL(), body, headers, AJAX_TIMEOUT).then(function (reply) {
      const token = reply && reply.data && reply.data.clientToken;
      if (!token) {
        svc.plugin.publish('error', { errors: [reply] });
        throw reply;
      }
      svc.active = true;
      acceptToken(token);
      model.restoredFrom = null;
      webchat.resetChat();
      updateSessionCookies(); // getSessionData before WebChatService.started and WebChat.started
      setState('started');
      svc.plugin.publish('started', { data: svc.session });
      startPoll();
      return reply;
    }, function (xhr) {
      if (!xhr.hookError) handleError(xhr);
      throw xhr;
    });
  }

  // Restore: the own session cookie means this domain had the chat; else a token from setSessionData is another
  // domain's chat. Returns whether a restore started.
  function asyncRestore() {
    if (svc.active || svc.restoring || svc.mode === 'legacy' || svc.mode === 'invalid' || svc.mode === 'unsupported') {
      return svc.restoring;
    }
    if (own.get(OWN.session)) {
      restoreSameDomain();
      return true;
    }
    const saved = customerToken();
    if (saved && saved.token) {
      restoreCrossDomain(saved.token);
      return true;
    }
    return false;
  }

  function beginRestore() {
    svc.restoring = true;
    setState('restoring');
  }
  function restoreFailed(xhr) {
    svc.restoring = false;
    svc.plugin.publish('restoreFailed', xhr);
  }

  function restoreSameDomain() {
    beginRestore();
    const sessionId = own.get(OWN.session);
    try {
      svc.session = svc.mode === 'async' ? decodeToken(customerToken().token) : decodeToken(own.get(OWN.keys));
    } catch (error) {
      report(error);
      svc.session = {};
    }
    try { // for the test contract only: the transport itself holds no token now, so getSessionData is not called
      model.token = (svc.mode === 'async' ? customerToken().token : own.get(OWN.keys)) || null;
    } catch (error) {
      model.token = null;
    }
    model.sessionData = null;
    const url = dataURL() + '/' + sessionId + '/messages?count=' + PAGE_SIZE + '&operationId=' + guid();
    request('GET', url, null, tokenHeaders, AJAX_TIMEOUT).then(function (reply) {
      finishRestore(reply, 'same-domain');
    }, function (xhr) {
      // The real widget: WebChatService.error and restoreFailed, its cookies removed; no sessionLost.
      svc.plugin.publish('error', { errors: [xhr] });
      restoreFailed(xhr);
      terminate();
      setState('lost');
      webchat.settled('failed');
    });
  }

  function restoreCrossDomain(token) {
    beginRestore();
    const headers = () => Object.assign({ 'x-nexus-client-key': token }, transportConfig().headers);
    request('POST', dataURL(), { data: formData(), operationId: guid() }, headers, AJAX_TIMEOUT).then(function (reply) {
      const fresh = reply && reply.data && reply.data.clientToken;
      if (!fresh) {
        restoreFailed(reply);
        svc.plugin.publish('error', { errors: [reply] });
        setState('lost');
        webchat.settled('failed');
        return;
      }
      acceptToken(fresh);
      updateSessionCookies(); // getSessionData with the fresh token
      const url = dataURL() + '/' + svc.session.sessionId + '/messages?count=' + PAGE_SIZE + '&operationId=' + guid();
      return request('GET', url, null, tokenHeaders, AJAX_TIMEOUT).then(function (page) {
        finishRestore(page, 'cross-domain');
      }, function (xhr) {
        restoreFailed(xhr);
        svc.plugin.publish('error', { errors: [xhr] });
        setState('lost');
        webchat.settled('failed');
      });
    }, function (xhr) {
      if (xhr.hookError) {
        svc.restoring = false;
        return;
      }
      svc.plugin.publish('restoreFailed', xhr);
      handleError(xhr); // 401/404/INVALID_SESSION: session lost
      if (svc.restoring) {
        svc.restoring = false;
        setState('lost');
        webchat.settled('failed');
      }
    });
  }

  function finishRestore(reply, from) {
    svc.active = true;
    syncModel();
    model.restoredFrom = from;
    setState('restored');
    svc.plugin.publish('restored', { async: svc.mode === 'async' || from === 'cross-domain' });
    process((reply && reply.data && reply.data.messages) || [], true);
    svc.restoring = false;
    startPoll();
    webchat.settled('restored');
  }

  // Each new message: remembered by its dash-less index, index cookie, getSessionData; then one
  // messageReceived for the batch (published later, as the real one's jQuery 3 deferreds do).
  function process(list, restoring) {
    const originals = [], messages = [];
    for (let i = 0; i < list.length; i++) {
      const original = list[i];
      const index = String(original.index || '').replace('-', '');
      if (!index || svc.seen[index]) continue;
      svc.seen[index] = true;
      const from = original.from || {};
      const message = Object.assign({}, original, { timestamp: original.utcTime, index: index,
        type: original.type === 'Text' ? 'Message' : original.type });
      if (original.type === 'PushUrl' && original.url) message.text = original.url;
      if (original.from) message.from = { name: from.nickname || from.firstName,
        type: from.type === 'Customer' ? 'Client' : from.type, participantId: from.participantId };
      announce(original);
      if (original.from) {
        if (from.nickname) from.name = from.nickname;
        if (from.type === 'Customer') from.type = 'Client';
        if (from.participantId) from.id = from.participantId;
      }
      if (svc.active) {
        svc.index = index;
        own.set(OWN.index, index);
        updateCustomerToken();
      }
      originals.push(original);
      messages.push(message);
    }
    if (restoring) {
      const byIndex = (a, b) => Number(String(a.index).replace('-', '')) - Number(String(b.index).replace('-', ''));
      messages.sort(byIndex);
      originals.sort(byIndex);
    }
    if (!messages.length) return;
    setTimeout(function () {
      svc.plugin.publish('messageReceived', { originalMessages: originals, messages: messages,
        restoring: svc.restoring, sessionData: undefined, oldMessages: false });
      webchat.render(messages);
    }, 0);
  }

  function announce(original) { // agent presence events (the real one never announces the client joining)
    const from = original.from || {};
    if (from.type !== 'Agent' && from.type !== 'Supervisor') {
      if (original.type === 'ParticipantJoined' && from.type === 'Customer') webchat.clientJoined = true;
      return;
    }
    if (original.type === 'ParticipantJoined') {
      webchat.agentReached = true;
      svc.plugin.publish('agentConnected', { message: original });
    } else if (original.type === 'ParticipantLeft') {
      svc.plugin.publish('agentDisconnected', { message: original });
    }
  }

  function pollDelay() {
    if (typeof knobs.pollTimeout === 'number') return Math.max(100, knobs.pollTimeout);
    const configured = transportConfig().pollTimeout;
    return Math.max(100, typeof configured === 'number' && configured ? configured : 3000);
  }
  function startPoll() {
    stopPoll();
    svc.polling = true;
    poll();
  }
  function stopPoll() {
    svc.polling = false;
    svc.pollPending = false;
    svc.pollError = false;
    svc.generation++;
    clearTimeout(svc.pollTimer);
    svc.pollTimer = null;
    svc.delay = pollDelay();
  }
  function schedule(generation) {
    if (!svc.polling || generation !== svc.generation) return;
    svc.delay = svc.pollError ? Math.floor(svc.delay * POLL_MULTIPLIER) : pollDelay();
    svc.pollTimer = setTimeout(poll, svc.delay);
  }
  function poll() {
    const sessionId = svc.session.sessionId;
    if (!svc.active || svc.pollPending || !sessionId) return;
    const generation = svc.generation;
    svc.pollPending = true;
    const url = dataURL() + '/' + sessionId + '/messages?operationId=' + guid();
    request('GET', url, null, tokenHeaders).then(function (reply) {
      if (generation !== svc.generation) return;
      svc.pollPending = false;
      svc.pollError = false;
      if (svc.disconnected) {
        svc.disconnected = false;
        svc.plugin.publish('reconnected');
      }
      const data = (reply && reply.data) || {};
      if (data.chatEnded === true && svc.active) {
        terminate(); // ended by the server: silently, no bus event
        setState('ended');
        webchat.serverEnded();
      }
      if (data.messages) process(data.messages, false);
      schedule(generation);
    }, function (xhr) {
      if (generation !== svc.generation) return;
      svc.pollPending = false;
      if (xhr.hookError) return; // the real widget's poll is stuck from here on
      if (xhr.status === 0 && !svc.disconnected) {
        svc.disconnected = true;
        svc.plugin.publish('disconnected');
      } else if (!svc.disconnected) handleError(xhr);
      if (xhr.status !== 429) svc.pollError = true;
      schedule(generation);
    });
  }

  function sendMessage(data) {
    const text = data && data.message;
    if (typeof text !== 'string' || !text.trim()) return Promise.reject('No message text provided');
    if (!svc.active) return Promise.reject('There is no active chat session.');
    const body = { operationId: guid(), data: { type: data.type === 'text' || !data.type ? 'Text' : data.type, text: text } };
    return request('POST', dataURL() + '/' + svc.session.sessionId + '/messages', body, tokenHeaders, AJAX_TIMEOUT)
      .then(function (reply) {
        if (reply && reply.data && reply.data.chatEnded === true && svc.active) {
          terminate();
          setState('ended');
          webchat.serverEnded();
        }
        return reply;
      }, function (xhr) {
        svc.plugin.publish('error', { errors: [xhr] });
        throw xhr;
      });
  }

  function endChat() {
    if (!svc.active) return Promise.reject('There is no active chat session');
    stopPoll();
    const url = dataURL() + '/' + svc.session.sessionId + '/participants/' + svc.session.participantId;
    const ended = function () {
      svc.plugin.publish('clientDisconnected');
      svc.plugin.publish('ended');
    };
    return request('DELETE', url, { operationId: guid() }, tokenHeaders, AJAX_TIMEOUT).then(function (reply) {
      ended();
      svc.plugin.publish('agentDisconnected', {});
      terminate();
      setState('ended');
      return reply;
    }, function (xhr) {
      ended();
      terminate();
      setState('ended');
      throw xhr;
    });
  }

  function startService() {
    svc.mode = transportMode();
    svc.delay = pollDelay();
    const plugin = svc.plugin = registerPlugin('WebChatService');
    plugin.registerCommand('startChat', startChat);
    plugin.registerCommand('sendMessage', sendMessage);
    plugin.registerCommand('endChat', endChat);
    plugin.registerCommand('getSessionData', () => svc.session);
    plugin.registerCommand('asyncRestore', () => (asyncRestore() ? undefined : Promise.reject()));
    plugin.ready();
    if (svc.mode === 'invalid') return; // the real service never becomes ready: "Invalid transport configuration"
    plugin.republish('ready');
    if (svc.mode === 'async' || svc.mode === 'plain') {
      try {
        asyncRestore();
      } catch (error) {
        report(error); // setSessionData's invalid JSON
      }
    }
  }

  // ---- WebChat: the panel -------------------------------------------------------------------------------------

  const webchat = { plugin: null, open: false, openWhenSettled: false, chatActive: false, startPublished: false,
    agentReached: false, clientJoined: false, endedHere: false, completed: false,
    resetChat: function () {
      this.startPublished = false;
      this.completed = false;
      this.agentReached = false;
      this.clientJoined = false;
      this.endedHere = false;
    },
    settled: function (how) {
      if (how === 'restored') {
        this.chatActive = true;
        if (!this.open && (this.openWhenSettled || own.get(OWN.open) === 'true')) this.show('transcript');
        else if (this.open) view.mode('transcript');
        return;
      }
      this.chatActive = false;
      view.notice(how === 'lost' ? 'Your chat session has expired or ended. Start a new chat below.'
        : 'The previous chat could not be restored. Start a new chat below.');
      if (this.open) view.mode('form');
      else if (this.openWhenSettled) this.show('form');
    },
    show: function (what) {
      this.openWhenSettled = false;
      this.open = true;
      view.build();
      this.render(this.unseen.splice(0)); // what came while the panel was closed, as the real transcript keeps it
      view.mode(what);
      if (what === 'form' && (model.state === 'idle' || model.state === 'restoring')) setState('form');
      this.plugin.publish('opened');
    },
    unseen: [],
    render: function (messages) {
      if (!view.root) return void this.unseen.push(...messages);
      messages.forEach((message) => view.message(message));
    },
    serverEnded: function () { // no event: the real panel stays as it was; the double says what happened
      view.notice('(test double) The server ended this chat. The real widget shows nothing and publishes no event.');
      view.mode('ended');
    }
  };

  function openCommand(data) {
    own.set(OWN.open, true);
    if (webchat.open) return Promise.reject('already opened');
    if (svc.restoring) {
      webchat.openWhenSettled = true;
      return undefined;
    }
    if (svc.active) {
      webchat.show('transcript');
      return undefined;
    }
    if (!(data && data.restoring) && svc.mode === 'async') {
      try {
        if (asyncRestore()) {
          webchat.openWhenSettled = true;
          return undefined;
        }
      } catch (error) {
        report(error);
      }
    }
    if (model.state === 'idle') webchat.resetChat();
    webchat.show('form');
    return undefined;
  }
  function closeCommand() {
    if (!webchat.open) return Promise.reject('WebChat is not open');
    webchat.open = false;
    own.remove(OWN.open);
    view.remove();
    if (!webchat.startPublished && !webchat.completed) webchat.plugin.publish('cancelled');
    webchat.plugin.publish('closed');
    return undefined;
  }
  function endChatCommand() {
    if (!webchat.chatActive) return Promise.reject('there is no active chat session to end');
    command('WebChat', 'WebChatService.endChat').then(null, () => { /* shown by the panel */ });
    return undefined;
  }
  function injectCommand(data) {
    if (!webchat.open || !(webchat.clientJoined || webchat.endedHere)) return Promise.reject('No chat session to inject into.');
    model.injected.push(data);
    return view.message({ type: 'injected', injected: true, text: data.text, name: data.name, html: data.type === 'html' });
  }

  function startWebChat() {
    const plugin = webchat.plugin = registerPlugin('WebChat');
    plugin.registerCommand('open', openCommand);
    plugin.registerCommand('close', closeCommand);
    plugin.registerCommand('endChat', endChatCommand);
    plugin.registerCommand('injectMessage', injectCommand);
    plugin.ready();
    subscribe('WebChatService.started', function () {
      webchat.chatActive = true;
      if (!webchat.startPublished) {
        webchat.startPublished = true;
        plugin.publish('started'); // new chats only, no session id
      }
      if (webchat.open) view.mode('transcript');
    });
    subscribe('WebChatService.ended', function () {
      webchat.chatActive = false;
      webchat.endedHere = true;
      view.message({ type: 'External', text: 'Chat Ended' });
      view.mode('ended');
      webchat.completed = webchat.agentReached;
      plugin.publish(webchat.agentReached ? 'completed' : 'cancelled');
    });
    plugin.republish('ready');
  }

  function startCore() {
    coreStarted = true;
    const widgets = genesysWidgets();
    widgets.bus = bus;
    registerPlugin('App').ready();
    const Common = { version: 'widgets-double', Cookie: Cookie, getCookieOptions: cookieOptions, guid: guid,
      log: function () { if (busConfig.debug && window.console) console.log.apply(console, arguments); } };
    const extensions = widgets.extensions || {};
    for (const key in extensions) { // before the service reads any session
      if (typeof extensions[key] !== 'function') continue;
      try {
        extensions[key](jq, CXBus, Common);
      } catch (error) {
        report(error);
      }
    }
    publish('App', 'App.ready', {}, true);
    startWebChat();
    startService();
  }

  // A very small stand-in for the jQuery the real library hands to extensions.
  function jq(selector) {
    return typeof selector === 'string' ? Array.prototype.slice.call(document.querySelectorAll(selector)) : [selector];
  }

  // ---- the DOM (the real widget's classes, so one driver drives both) ----------------------------------------

  const STYLE = `
:is(#chat, body) .cx-webchat { font: 14px/1.4 system-ui, "DejaVu Sans", sans-serif; color: #1d1d1f; background: #fff;
  border: 1px solid #c9c9d1; border-radius: 10px; overflow: hidden; max-width: 460px; box-shadow: 0 2px 8px rgba(0,0,0,.1); }
:is(#chat, body) .cx-webchat .cx-titlebar { display: flex; align-items: center; gap: 8px; padding: 8px 12px; background: #2e3a59; color: #fff; }
:is(#chat, body) .cx-webchat .cx-title { font-weight: 600; flex: 1; }
:is(#chat, body) .cx-webchat .cx-button-close { background: none; border: 1px solid rgba(255,255,255,.6); color: #fff; border-radius: 4px; padding: 0 8px; cursor: pointer; font: inherit; }
:is(#chat, body) .cx-webchat .cx-double-note { margin: 0; padding: 4px 12px; font-size: 12px; background: #fff4d6; color: #6b4b00; }
:is(#chat, body) .cx-webchat .cx-notice { margin: 0; padding: 6px 12px; font-size: 13px; color: #8a4b00; }
:is(#chat, body) .cx-webchat .cx-notice:empty { display: none; }
:is(#chat, body) .cx-webchat form.cx-form { display: grid; grid-template-columns: max-content 1fr; gap: 6px 10px; padding: 10px 12px; }
:is(#chat, body) .cx-webchat form.cx-form input { font: inherit; padding: 4px 6px; border: 1px solid #aaa; border-radius: 4px; }
:is(#chat, body) .cx-webchat form.cx-form input.cx-error { border-color: #c00; }
:is(#chat, body) .cx-webchat .cx-button-group { grid-column: 1 / 3; display: flex; gap: 8px; justify-content: flex-end; }
:is(#chat, body) .cx-webchat .cx-btn { font: inherit; padding: 5px 14px; border-radius: 4px; border: 1px solid #2e3a59; cursor: pointer; background: #fff; color: #2e3a59; }
:is(#chat, body) .cx-webchat .cx-btn-primary { background: #2e3a59; color: #fff; }
:is(#chat, body) .cx-webchat .cx-transcript { min-height: 80px; max-height: 300px; overflow-y: auto; padding: 8px 12px; background: #f6f6f8; }
:is(#chat, body) .cx-webchat .cx-message { margin: 4px 0; }
:is(#chat, body) .cx-webchat .cx-message .cx-name { display: block; font-size: 11px; color: #666; }
:is(#chat, body) .cx-webchat .cx-message-text { display: inline-block; padding: 5px 10px; border-radius: 8px; background: #e4e4ea; overflow-wrap: anywhere; }
:is(#chat, body) .cx-webchat .cx-you { text-align: right; }
:is(#chat, body) .cx-webchat .cx-you .cx-message-text { background: #2e3a59; color: #fff; }
:is(#chat, body) .cx-webchat .cx-system { text-align: center; font-style: italic; color: #555; }
:is(#chat, body) .cx-webchat .cx-system .cx-message-text { background: none; padding: 0; }
:is(#chat, body) .cx-webchat .cx-input-container { display: flex; gap: 8px; padding: 8px 12px; border-top: 1px solid #ddd; }
:is(#chat, body) .cx-webchat .cx-message-input { flex: 1; font: inherit; resize: none; height: 2.6em; }
:is(#chat, body) .cx-webchat .cx-send { align-self: center; cursor: pointer; padding: 5px 12px; border-radius: 4px; background: #2e3a59; color: #fff; }
:is(#chat, body) .cx-webchat .cx-alert { padding: 10px 12px; background: #fff; border-top: 2px solid #c60; }
:is(#chat, body) .cx-webchat .cx-alert p { margin: 0 0 8px; }
:is(#chat, body) .cx-webchat [hidden] { display: none !important; }`;

  function el(tag, attributes, text) {
    const node = document.createElement(tag);
    for (const key in attributes || {}) node.setAttribute(key, attributes[key]);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  const view = {
    root: null,
    build: function () {
      if (this.root) return;
      if (!document.getElementById('cx-double-style')) {
        document.head.appendChild(el('style', { id: 'cx-double-style' })).textContent = STYLE;
      }
      const root = this.root = el('div', { 'class': 'cx-widget cx-webchat', role: 'dialog', 'aria-label': 'Chat' });
      const title = root.appendChild(el('div', { 'class': 'cx-titlebar' }));
      title.appendChild(el('span', { 'class': 'cx-title' }, 'Chat'));
      const close = title.appendChild(el('button', { 'class': 'cx-button-close', type: 'button', 'aria-label': 'Close' }, '\u00d7'));
      this.status = root.appendChild(el('p', { 'class': 'cx-double-note' }));
      this.notes = root.appendChild(el('p', { 'class': 'cx-notice', role: 'status' }));
      this.form = root.appendChild(this.buildForm());
      this.transcript = root.appendChild(el('div', { 'class': 'cx-transcript', 'aria-live': 'polite' }));
      const input = root.appendChild(el('div', { 'class': 'cx-input-container' }));
      this.input = input.appendChild(el('textarea', { 'class': 'cx-message-input cx-input', id: 'cx_input', maxlength: '140',
        placeholder: 'Type your message here', 'aria-label': 'Message' }));
      const send = input.appendChild(el('div', { 'class': 'cx-send cx-icon', role: 'button', tabindex: '0', title: 'Send' }, 'Send'));
      this.endAlert = root.appendChild(el('div', { 'class': 'cx-alert cx-chat-end', role: 'alertdialog', hidden: '' }));
      this.endAlert.appendChild(el('p', {}, 'Are you sure you want to end this chat session?'));
      const buttons = this.endAlert.appendChild(el('div', { 'class': 'cx-button-group cx-buttons-binary' }));
      const cancel = buttons.appendChild(el('button', { 'class': 'cx-end-cancel cx-btn cx-btn-default', type: 'button' }, 'No'));
      const confirm = buttons.appendChild(el('button', { 'class': 'cx-end-confirm cx-btn cx-btn-primary', type: 'button' }, 'Yes'));
      close.addEventListener('click', () => {
        if (webchat.chatActive) this.endAlert.hidden = false; // async chat: "end this chat?" first
        else command('WebChat', 'WebChat.close');
      });
      cancel.addEventListener('click', () => { this.endAlert.hidden = true; });
      confirm.addEventListener('click', () => {
        this.endAlert.hidden = true;
        command('WebChat', 'WebChatService.endChat').then(null, (error) => this.notice('Could not end the chat: ' + error));
      });
      const submitText = () => {
        const text = this.input.value;
        if (!text.trim()) return;
        this.input.value = '';
        command('WebChat', 'WebChatService.sendMessage', { message: text }).then(null, (error) => {
          this.notice('Could not send: ' + (error && error.status ? 'HTTP ' + error.status : error));
        });
      };
      send.addEventListener('click', submitText);
      send.addEventListener('keydown', (event) => { if (event.key === 'Enter' || event.key === ' ') submitText(); });
      this.input.addEventListener('keydown', (event) => {
        if (event.key === 'Enter' && !event.shiftKey) {
          event.preventDefault();
          submitText();
        }
      });
      (document.getElementById('chat') || document.body).appendChild(root);
      this.refresh();
    },
    buildForm: function () {
      const form = el('form', { 'class': 'cx-form', novalidate: '' });
      [['firstname', 'First Name', true], ['lastname', 'Last Name', true], ['email', 'Email', false],
        ['subject', 'Subject', false]].forEach(function (field) {
        const id = 'cx_webchat_form_' + field[0];
        form.appendChild(el('label', { 'for': id }, field[1] + (field[2] ? ' *' : '')));
        form.appendChild(el('input', { id: id, name: field[0], 'class': 'cx-input cx-form-control', maxlength: '100',
          type: field[0] === 'email' ? 'email' : 'text' }));
      });
      const buttons = form.appendChild(el('div', { 'class': 'cx-button-group cx-buttons-binary' }));
      buttons.appendChild(el('button', { 'class': 'cx-btn cx-btn-default', type: 'button' }, 'Cancel'))
        .addEventListener('click', () => command('WebChat', 'WebChat.close'));
      const submit = buttons.appendChild(el('button', { 'class': 'cx-btn cx-btn-primary cx-submit', type: 'submit' }, 'Start Chat'));
      form.addEventListener('submit', (event) => {
        event.preventDefault();
        this.submitForm(form, submit);
      });
      return form;
    },
    submitForm: function (form, submit) {
      const values = {};
      let valid = true;
      Array.prototype.forEach.call(form.querySelectorAll('input'), function (input) {
        values[input.name] = input.value.trim();
        const bad = (input.name === 'firstname' || input.name === 'lastname') && !values[input.name];
        input.classList.toggle('cx-error', bad);
        valid = valid && !bad;
      });
      if (!valid) return;
      try {
        customerToken(); // the real form first asks the service to restore, which reads setSessionData
      } catch (error) {
        report(error);
        this.notice('Could not start the chat: setSessionData threw ' + error);
        return;
      }
      submit.disabled = true;
      this.notice('');
      webchat.plugin.publish('submitted');
      command('WebChat', 'WebChatService.startChat', { form: values, userData: {} }).then(() => {
        submit.disabled = false;
        form.reset();
      }, (error) => {
        submit.disabled = false;
        const status = error && error.responseJSON && error.responseJSON.status;
        this.notice('Could not start the chat: ' + (status ? status.code : error && error.status ? 'HTTP ' + error.status : error));
      });
    },
    mode: function (what) {
      if (!this.root) return;
      this.form.hidden = what !== 'form';
      this.transcript.hidden = what === 'form';
      this.input.parentNode.hidden = what !== 'transcript';
      this.endAlert.hidden = true;
      if (what === 'form') this.transcript.textContent = '';
      if (what === 'transcript') this.notice('');
      this.refresh();
    },
    notice: function (text) {
      if (this.notes) this.notes.textContent = text || '';
    },
    message: function (message) {
      if (!this.root) return false;
      const from = message.from || {};
      let kind = 'cx-system', text = message.text, name = from.name || '';
      if (message.type === 'Message') kind = 'cx-participant ' + (from.type === 'Client' ? 'cx-you' : 'cx-them');
      else if (message.type === 'ParticipantJoined') text = (name || from.type) + ' joined the chat';
      else if (message.type === 'ParticipantLeft') text = (name || from.type) + ' left the chat';
      else if (message.type === 'injected') name = message.name || '';
      else if (message.type !== 'Notice' && message.type !== 'PushUrl' && message.type !== 'External') return false;
      const node = el('div', { 'class': 'cx-message ' + kind + (message.injected ? ' cx-injected' : '') });
      if (message.index) node.setAttribute('data-index', message.index);
      if (name && message.type !== 'ParticipantJoined' && message.type !== 'ParticipantLeft') node.appendChild(el('span', { 'class': 'cx-name' }, name));
      const body = node.appendChild(el('div', { 'class': 'cx-message-text' }));
      if (message.html) body.innerHTML = String(text); else body.textContent = text == null ? '' : String(text);
      this.transcript.appendChild(node);
      this.transcript.scrollTop = this.transcript.scrollHeight;
      return true;
    },
    refresh: function () {
      if (!this.root) return;
      this.root.setAttribute('data-state', model.state);
      const transport = svc.mode === 'async' ? '' : svc.mode === 'legacy'
        ? ' · legacy transport (no type): the async hooks are never called and the chat does not persist'
        : svc.mode === 'plain' ? ' · async disabled: the hooks are never called'
          : ' · transport type "' + transportConfig().type + '" is not modelled: no chat';
      // The state and session id only with CXBus.configure({ debug: true }) and ?debug=1 (the guide's sample always
      // sets debug: true): a newcomer's panel says what it is, not how it works.
      const details = busConfig.debug && /[?&]debug=1\b/.test(location.search)
        ? ' · state: ' + model.state + (model.sessionId ? ' · session ' + model.sessionId.slice(0, 8) : '') : '';
      this.status.textContent = 'Test double of Genesys Widgets 9 (not Genesys code)' + details + transport;
    },
    remove: function () {
      if (this.root && this.root.parentNode) this.root.parentNode.removeChild(this.root);
      this.root = null;
    }
  };

  window.CXBus = CXBus;
})(window, document);
