/* TEST DOUBLE of Genesys Widgets (CXBus + WebChat with the async transport). This is NOT Genesys code: it emulates only what cookiebridge's tests and demo need, and talks to cookiebridge's chat emulator (/chat/sessions). */
// Contract for tests: window.__widgetDouble = { state, sessionId, sessionData, restoredFrom, events, messages,
// injected (the data of every WebChat.injectMessage command on this page) }.
// Optional knobs, set before this script loads: window.__widgetDoubleConfig = { loadDelay: ms to "download" a
// plugin (default 1500: a real widget downloads widgets-core and its plugins from a CDN before it reads the session;
// the guide's sample does not wait for loadCookie(), so this models the head start the provider gets),
// pollGap: ms between long polls (default 250) }.
(function (window, document) {
  'use strict';
  if (window.CXBus && window.CXBus.isTestDouble) return;

  var options = window.__widgetDoubleConfig || {};
  var LOAD_DELAY = typeof options.loadDelay === 'number' ? options.loadDelay : 1500;
  var POLL_GAP = typeof options.pollGap === 'number' ? options.pollGap : 250;
  var RETRY_DELAY = 2000;
  var API = '/chat/sessions';

  var model = window.__widgetDouble = {
    state: 'idle', sessionId: null, sessionData: null, restoredFrom: null, events: [], messages: [], injected: []
  };
  var configuration = {};

  function report(error) {
    // Uncaught, so the page's error collector sees it, but without breaking the widget's own flow.
    setTimeout(function () { throw error; }, 0);
  }

  function assign(target) {
    for (var i = 1; i < arguments.length; i++) {
      var source = arguments[i];
      for (var key in source) {
        if (key !== '__proto__' && Object.prototype.hasOwnProperty.call(source, key)) target[key] = source[key];
      }
    }
    return target;
  }

  // ---- js-cookie 3 compatible helper (same encodings and attribute handling as js-cookie 3.0.8) ----------------

  var Cookie = {
    set: function (name, value, attributes) {
      attributes = assign({}, { path: '/' }, attributes);
      if (typeof attributes.expires === 'number') attributes.expires = new Date(Date.now() + attributes.expires * 864e5);
      if (attributes.expires) attributes.expires = attributes.expires.toUTCString();
      name = encodeURIComponent(name)
        .replace(/%(2[346B]|5E|60|7C)/g, decodeURIComponent)
        .replace(/[()]/g, escape);
      var stringified = '';
      for (var attribute in attributes) {
        if (!attributes[attribute]) continue;
        stringified += '; ' + attribute;
        if (attributes[attribute] === true) continue;
        stringified += '=' + String(attributes[attribute]).split(';')[0];
      }
      var written = encodeURIComponent(value).replace(/%(2[346BF]|3[AC-F]|40|5[BDE]|60|7[BCD])/g, decodeURIComponent);
      return (document.cookie = name + '=' + written + stringified);
    },
    get: function (name) {
      if (arguments.length && !name) return undefined;
      var cookies = document.cookie ? document.cookie.split('; ') : [];
      var jar = {};
      for (var i = 0; i < cookies.length; i++) {
        var parts = cookies[i].split('=');
        var value = parts.slice(1).join('=');
        try {
          var found = decodeURIComponent(parts[0]);
          if (!(found in jar)) {
            if (value[0] === '"') value = value.slice(1, -1);
            jar[found] = value.replace(/(%[\dA-F]{2})+/gi, decodeURIComponent);
          }
          if (name === found) break;
        } catch (e) { /* a cookie that is not URI-encoded: skipped, as js-cookie does */ }
      }
      return name ? jar[name] : jar;
    },
    remove: function (name, attributes) {
      Cookie.set(name, '', assign({}, attributes, { expires: -1 }));
    }
  };

  function cookieOptions() {
    return { path: '/', secure: location.protocol === 'https:', sameSite: 'Lax', expires: 30 };
  }

  // The widget does not know the page's cookie name: it remembers the names the transport hooks use.
  var sessionCookieNames = [];
  var hookCookie = {
    set: function (name) {
      if (sessionCookieNames.indexOf(name) < 0) sessionCookieNames.push(name);
      return Cookie.set.apply(Cookie, arguments);
    },
    get: function (name) {
      if (name && sessionCookieNames.indexOf(name) < 0) sessionCookieNames.push(name);
      return Cookie.get.apply(Cookie, arguments);
    },
    remove: Cookie.remove
  };

  function removeSessionCookies() {
    for (var i = 0; i < sessionCookieNames.length; i++) Cookie.remove(sessionCookieNames[i], { path: '/' });
  }

  // ---- the bus -----------------------------------------------------------------------------------------------

  var subscribers = {};
  var commands = {};
  var plugins = {};
  var loaded = {};

  function publish(event, data) {
    model.events.push(event);
    if (configuration.debug && window.console && console.debug) console.debug('[widgets double] ' + event, data);
    var list = (subscribers[event] || []).slice();
    for (var i = 0; i < list.length; i++) {
      try {
        list[i]({ event: event, data: data });
      } catch (e) {
        report(e);
      }
    }
  }

  function subscribe(event, callback) {
    if (typeof callback !== 'function') return false;
    (subscribers[event] = subscribers[event] || []).push(callback);
    return event;
  }

  function command(name, data) {
    return new Promise(function (resolve, reject) {
      var handler = commands[name];
      if (!handler) {
        reject(new Error('widgets double: unknown command ' + name + (loaded['widgets-core'] ? '' : ' (widgets-core is not loaded)')));
        return;
      }
      resolve(handler(data || {}));
    });
  }

  function registerPlugin(name) {
    if (plugins[name]) {
      if (window.console) console.warn('widgets double: a plugin named ' + name + ' is already registered');
      return false;
    }
    var plugin = plugins[name] = {
      name: name,
      subscribe: subscribe,
      command: command,
      publish: function (event, data) { publish(name + '.' + event, data); },
      registerCommand: function (commandName, handler) { commands[name + '.' + commandName] = handler; }
    };
    return plugin;
  }

  var $ = function (selector) {
    return typeof selector === 'string' ? Array.prototype.slice.call(document.querySelectorAll(selector)) : [selector];
  };
  var Common = {
    version: 'widgets-double',
    Cookie: Cookie,
    log: function () { if (configuration.debug && window.console) console.log.apply(console, arguments); },
    debug: function () { if (configuration.debug && window.console) console.debug.apply(console, arguments); }
  };

  var CXBus = {
    isTestDouble: true,
    configure: function (opts) {
      configuration = assign({}, opts);
      return Promise.resolve();
    },
    loadPlugin: function (name) {
      return new Promise(function (resolve) {
        setTimeout(function () {
          if (!loaded[name]) {
            loaded[name] = true;
            if (name === 'widgets-core') startCore();
          }
          resolve();
        }, LOAD_DELAY);
      });
    },
    command: command,
    subscribe: subscribe,
    publish: publish,
    registerPlugin: registerPlugin
  };

  function startCore() {
    var genesys = window._genesys = window._genesys || {};
    var widgets = genesys.widgets = genesys.widgets || {};
    widgets.bus = { registerPlugin: registerPlugin, subscribe: subscribe, publish: publish, command: command };
    var webChat = registerPlugin('WebChat');
    webChat.registerCommand('open', open);
    webChat.registerCommand('startChat', startChat);
    webChat.registerCommand('sendMessage', sendMessage);
    webChat.registerCommand('endChat', endChat);
    webChat.registerCommand('injectMessage', injectMessage);
    var extensions = widgets.extensions || {};
    for (var key in extensions) {
      if (!Object.prototype.hasOwnProperty.call(extensions, key) || typeof extensions[key] !== 'function') continue;
      try {
        extensions[key]($, CXBus, Common);
      } catch (e) {
        if (window.console) console.error('widgets double: extension ' + key + ' failed', e);
      }
    }
    webChat.publish('ready', {});
  }

  // ---- the async transport -----------------------------------------------------------------------------------

  function transport() {
    var webchat = window._genesys && window._genesys.widgets && window._genesys.widgets.webchat;
    var async = webchat && webchat.transport && webchat.transport.async;
    return async && async.enabled ? async : null;
  }

  function callHook(name, first) {
    var async = transport();
    if (!async || typeof async[name] !== 'function') return undefined;
    try {
      return async[name](first, hookCookie, cookieOptions());
    } catch (e) {
      report(e);
      return undefined;
    }
  }

  function api(method, path, body) {
    var init = { method: method, cache: 'no-store', credentials: 'same-origin' };
    if (body !== undefined) {
      init.headers = { 'Content-Type': 'application/json' };
      init.body = JSON.stringify(body);
    }
    return fetch(API + path, init).then(function (response) {
      return response.json().then(null, function () { return null; }).then(function (json) {
        return { status: response.status, ok: response.ok, body: json };
      });
    });
  }

  function messagesPath(sessionId) {
    return '/' + encodeURIComponent(sessionId) + '/messages';
  }

  // ---- the panel ---------------------------------------------------------------------------------------------

  var ui = null;

  function element(tag, attributes, text) {
    var node = document.createElement(tag);
    for (var key in attributes) node.setAttribute(key, attributes[key]);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function panel() {
    if (ui) return ui;
    var root = document.getElementById('chat');
    if (!root) {
      root = element('div', { id: 'chat' });
      document.body.appendChild(root);
    }
    root.textContent = '';
    ui = { root: root };
    root.appendChild(element('h2', {}, 'Chat (Genesys Widgets test double)'));
    var facts = element('dl');
    function fact(label, id, value) {
      facts.appendChild(element('dt', {}, label));
      var dd = element('dd', { id: id }, value);
      facts.appendChild(dd);
      return dd;
    }
    fact('Site', 'chat-site', location.host);
    ui.state = fact('State', 'chat-state', model.state);
    ui.session = fact('Session', 'chat-session', '\u2014');
    root.appendChild(facts);
    ui.note = root.appendChild(element('p', { id: 'chat-note', role: 'status' }));
    ui.list = root.appendChild(element('ul', { id: 'chat-messages', 'aria-live': 'polite' }));
    ui.controls = root.appendChild(element('div', { id: 'chat-controls' }));
    ui.rendered = {};
    return ui;
  }

  function setState(value) {
    model.state = value;
    var view = panel();
    view.state.textContent = value;
    view.session.textContent = model.sessionId || '\u2014';
    view.root.setAttribute('data-state', value);
  }

  function note(text) {
    panel().note.textContent = text || '';
  }

  function addLine(className, text, id) {
    var view = panel();
    var item = element('li', { 'class': className }, text);
    if (id) item.setAttribute('data-id', id);
    view.list.appendChild(item);
    view.list.scrollTop = view.list.scrollHeight;
    return item;
  }

  function describe(message) {
    if (message.type === 'System' && message.event === 'InteractionStateChange') {
      return 'Interaction state: ' + (message.data && message.data.interactionState);
    }
    return typeof message.text === 'string' ? message.text : message.type + (message.event ? ' ' + message.event : '');
  }

  function renderMessage(message) {
    var view = panel();
    if (!message || view.rendered[message.id]) return;
    view.rendered[message.id] = true;
    model.messages.push(message);
    var from = (message.from && message.from.type) || 'System';
    addLine(from === 'Customer' ? 'customer' : from === 'Agent' ? 'agent' : 'system', describe(message), message.id);
  }

  function showStart(label) {
    var view = panel();
    view.controls.textContent = '';
    var button = view.controls.appendChild(element('button', { id: 'chat-start', type: 'button' }, label || 'Start chat'));
    button.addEventListener('click', function () {
      button.disabled = true;
      command('WebChat.startChat', {}).then(null, function (error) {
        button.disabled = false;
        note('Could not start the chat: ' + error.message);
      });
    });
  }

  function showComposer() {
    var view = panel();
    view.controls.textContent = '';
    var form = view.controls.appendChild(element('form', { id: 'chat-form' }));
    var input = form.appendChild(element('input', { id: 'chat-input', type: 'text', maxlength: '4000', placeholder: 'Type a message', 'aria-label': 'Message' }));
    form.appendChild(element('button', { id: 'chat-send', type: 'submit' }, 'Send'));
    var end = form.appendChild(element('button', { id: 'chat-end', type: 'button' }, 'End chat'));
    form.addEventListener('submit', function (event) {
      event.preventDefault();
      var text = input.value;
      if (!text.replace(/\s+/g, '')) return;
      input.value = '';
      command('WebChat.sendMessage', { message: text }).then(null, function (error) {
        input.value = text;
        note('Could not send: ' + error.message);
      });
    });
    end.addEventListener('click', function () {
      command('WebChat.endChat');
    });
  }

  // ---- polling -----------------------------------------------------------------------------------------------

  var polling = { generation: 0, lastIndex: null, controller: null, timer: null };

  function stopPolling() {
    polling.generation++;
    clearTimeout(polling.timer);
    if (polling.controller) polling.controller.abort();
    polling.controller = null;
  }

  function startPolling(lastIndex) {
    stopPolling();
    polling.lastIndex = lastIndex;
    poll(polling.generation);
  }

  function receive(data) {
    var raw = (data && data.messages) || [];
    if (data && data.lastDeliveredIndex) polling.lastIndex = data.lastDeliveredIndex;
    else if (raw.length) polling.lastIndex = raw[raw.length - 1].index;
    if (!raw.length) return;
    var messages = [];
    for (var i = 0; i < raw.length; i++) {
      var m = raw[i];
      messages.push({
        index: m.index,
        type: m.type === 'Text' ? 'Message' : 'Notice',
        from: { type: m.from && m.from.type, participantId: m.from && m.from.participantId },
        text: describe(m),
        timestamp: Date.parse(m.utcTime)
      });
    }
    for (var j = 0; j < raw.length; j++) renderMessage(raw[j]);
    // After rendering, so what a subscriber injects shows below the message that triggered it.
    publish('WebChatService.messageReceived', { originalMessages: raw, messages: messages });
  }

  function poll(generation) {
    if (generation !== polling.generation || !model.sessionId) return;
    var sessionId = model.sessionId;
    var query = polling.lastIndex ? '?index=' + encodeURIComponent(polling.lastIndex) : '';
    var controller = polling.controller = typeof AbortController === 'function' ? new AbortController() : null;
    var init = { cache: 'no-store', credentials: 'same-origin' };
    if (controller) init.signal = controller.signal;
    fetch(API + messagesPath(sessionId) + query, init)
      .then(function (response) {
        return response.json().then(function (body) { return { status: response.status, body: body }; });
      })
      .then(function (reply) {
        if (generation !== polling.generation) return;
        if (reply.status === 404) {
          finish('The chat session no longer exists.');
          return;
        }
        if (reply.status !== 200) throw new Error('HTTP ' + reply.status);
        receive(reply.body.data);
        if (reply.body.data.chatEnded) {
          finish('The chat has ended.');
          return;
        }
        polling.timer = setTimeout(function () { poll(generation); }, POLL_GAP);
      })
      .then(null, function () {
        if (generation !== polling.generation) return;
        polling.timer = setTimeout(function () { poll(generation); }, RETRY_DELAY);
      });
  }

  window.addEventListener('pagehide', stopPolling);
  window.addEventListener('pageshow', function (event) {
    if (event.persisted && model.sessionId && (model.state === 'started' || model.state === 'restored')) {
      startPolling(polling.lastIndex);
    }
  });

  // ---- WebChat commands --------------------------------------------------------------------------------------

  var opening = null;

  function parseSession(raw) {
    try {
      var data = JSON.parse(raw);
      return data && typeof data === 'object' && typeof data.sessionId === 'string' && data.sessionId ? data : null;
    } catch (e) {
      return null;
    }
  }

  // The session is over (ended here, elsewhere, or unknown to the service): forget it and offer a new chat.
  function finish(message) {
    stopPolling();
    removeSessionCookies();
    var hadSession = !!model.sessionId;
    model.sessionId = null;
    setState('ended');
    if (message) addLine('system', message);
    showStart('Start a new chat');
    if (hadSession) publish('WebChat.ended', {});
  }

  function open() {
    if (opening) return opening;
    if (model.state !== 'idle' && model.state !== 'ended') return Promise.resolve();
    panel();
    setState('open');
    var raw = callHook('setSessionData', true);
    var saved = typeof raw === 'string' && raw ? parseSession(raw) : null;
    if (typeof raw === 'string' && raw && !saved) {
      note('The saved chat session could not be read, so a new chat will start.');
      removeSessionCookies();
    }
    if (!saved) {
      showStart();
      publish('WebChat.opened', {});
      return Promise.resolve();
    }
    opening = restore(saved).then(function (result) {
      opening = null;
      return result;
    });
    return opening;
  }

  function restore(saved) {
    note('Restoring your chat\u2026');
    return api('GET', messagesPath(saved.sessionId)).then(function (reply) {
      if (reply.status !== 200 || !reply.body || !reply.body.data || reply.body.data.chatEnded) {
        note(reply.status === 404 ? 'The saved chat no longer exists; start a new one.' : 'The saved chat has ended; start a new one.');
        removeSessionCookies();
        showStart();
        publish('WebChat.opened', {});
        return;
      }
      note('');
      model.sessionId = saved.sessionId;
      model.sessionData = saved;
      model.restoredFrom = 'cookie';
      setState('restored');
      showComposer();
      var history = reply.body.data;
      for (var i = 0; i < history.messages.length; i++) renderMessage(history.messages[i]);
      publish('WebChat.restored', { sessionId: saved.sessionId });
      publish('WebChat.opened', {});
      receive(history);
      startPolling(polling.lastIndex);
    }, function () {
      note('The chat service could not be reached; start a new chat.');
      showStart();
      publish('WebChat.opened', {});
    });
  }

  var starting = false;

  function startChat(data) {
    if (starting) return Promise.reject(new Error('a chat is already starting'));
    if (model.sessionId) return Promise.reject(new Error('a chat is already in progress'));
    if (model.state === 'idle') setState('open');
    starting = true;
    note('');
    return api('POST', '', {}).then(function (reply) {
      starting = false;
      if (!reply.ok || !reply.body || !reply.body.sessionId) throw new Error('the chat service answered HTTP ' + reply.status);
      var sessionId = reply.body.sessionId;
      var sessionData = assign({ sessionId: sessionId, alias: 'demo', startedAt: new Date().toISOString() }, data && data.extra);
      model.sessionId = sessionId;
      model.sessionData = sessionData;
      model.restoredFrom = null;
      setState('started');
      showComposer();
      callHook('getSessionData', sessionData);
      // The real widget announces the start later, never inside the command.
      setTimeout(function () { publish('WebChat.started', { sessionId: sessionId }); }, 0);
      startPolling(null);
      return { sessionId: sessionId };
    }, function (error) {
      starting = false;
      throw error;
    });
  }

  function sendMessage(data) {
    var text = data && data.message;
    if (!model.sessionId) return Promise.reject(new Error('no chat in progress'));
    if (typeof text !== 'string' || !text.replace(/\s+/g, '')) return Promise.reject(new Error('the message is empty'));
    return api('POST', messagesPath(model.sessionId), { text: text }).then(function (reply) {
      if (!reply.ok) throw new Error((reply.body && reply.body.status && reply.body.status.message) || 'HTTP ' + reply.status);
      var stored = reply.body.data.messages;
      for (var i = 0; i < stored.length; i++) renderMessage(stored[i]);
      return { message: text };
    });
  }

  function endChat() {
    var sessionId = model.sessionId;
    if (!sessionId) return Promise.resolve();
    stopPolling();
    var told = api('POST', '/' + encodeURIComponent(sessionId) + '/end', {}).then(null, function () { return null; });
    return told.then(function () {
      finish('Chat ended.');
    });
  }

  function injectMessage(data) {
    var text = data && data.text;
    model.injected.push(data);
    addLine('system injected', typeof text === 'string' ? text : String(text));
    return Promise.resolve();
  }

  window.CXBus = CXBus;
})(window, document);
