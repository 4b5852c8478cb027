/*! cookiebridge chat-finalizer | MIT */
// The guide's "Close the chat when an agent disconnects" as a Genesys Widgets extension. When the agent finalizes an
// interaction, an async chat gets a notice and any other chat is ended: once per interaction, also across reloads
// and history replays. When the chat ends, the cookie provider (if any) forgets the session.
(function (window) {
  'use strict';
  if (window.ChatFinalizer && window.ChatFinalizer.cookiebridge) return;
  var VERSION = 1;
  var DEFAULT_MESSAGE = 'Thank you for your query. Please do not respond to this automated message if you do not ' +
    'have additional questions.';
  var DEFAULT_STORAGE_KEY = 'cookiebridge.chat-finalizer';
  var MAX_KEY = 200;
  var unkeyed = 0;

  function warn(message) {
    if (window.console && console.warn) console.warn('cookiebridge chat-finalizer: ' + message);
  }

  function isAsyncChat() {
    try {
      var transport = window._genesys.widgets.webchat.transport;
      return !!(transport && transport.async && transport.async.enabled);
    } catch (e) {
      return false;
    }
  }

  function keyOf(message) {
    var key = message.index != null ? message.index : message.streamId != null ? message.streamId : message.id;
    return typeof key === 'string' || typeof key === 'number' ? String(key).slice(0, MAX_KEY) : null;
  }

  // The interaction state changes of a messageReceived event, oldest first; anything malformed is skipped.
  function stateChanges(event) {
    var messages = event && event.data && event.data.originalMessages, found = [];
    if (!Array.isArray(messages)) return found;
    for (var i = 0; i < messages.length; i++) {
      var message = messages[i];
      if (!message || message.type !== 'System' || message.event !== 'InteractionStateChange') continue;
      var state = message.data && message.data.interactionState;
      if (typeof state === 'string') found.push({ state: state, key: keyOf(message) });
    }
    return found;
  }

  function memoryStorage() {
    var items = {};
    return {
      getItem: function (key) { return Object.prototype.hasOwnProperty.call(items, key) ? items[key] : null; },
      setItem: function (key, value) { items[key] = String(value); },
      removeItem: function (key) { delete items[key]; }
    };
  }

  function defaultStorage() {
    try {
      var storage = window.sessionStorage; // throws where storage is disabled or the document is sandboxed
      storage.setItem(DEFAULT_STORAGE_KEY + '.probe', '1');
      storage.removeItem(DEFAULT_STORAGE_KEY + '.probe');
      return storage;
    } catch (e) {
      return memoryStorage();
    }
  }

  // What was handled in this tab's chat session: the current interaction (the index of its Active state change,
  // '' for the first one) and the interaction whose finalization was already handled.
  function fresh(sessionId) {
    return { session: sessionId || null, interaction: '', handled: null };
  }

  function load(storage, key) {
    try {
      var record = JSON.parse(storage.getItem(key));
      if (record && typeof record.interaction === 'string' &&
          (record.handled === null || typeof record.handled === 'string')) return record;
    } catch (e) { /* missing or unreadable: start over */ }
    return fresh(null);
  }

  // WebChatService.started carries the session as { data: { sessionId, participantId, token } }; the
  // WebChatService.getSessionData command answers the same object without the wrapper.
  function sessionIdOf(data) {
    var id = data && (data.data && typeof data.data === 'object' ? data.data : data).sessionId;
    return typeof id === 'string' && id ? id.slice(0, MAX_KEY) : null;
  }

  function call(what, action) {
    try {
      var result = action();
      if (result && typeof result.then === 'function') {
        result.then(null, function (error) {
          warn(what + ' failed: ' + error);
        });
      }
    } catch (e) {
      warn(what + ' failed: ' + e);
    }
  }

  /**
   * ChatFinalizer(bus, options): bus is the Widgets bus (CXBus, or a plugin registered on it; default window.CXBus).
   * options: { message: the notice for async chats (the guide's text by default), provider: a CookieProvider (or
   * the CookieProviderExtension) whose removeCookie() runs when the chat ends, onFinalized(details),
   * storage: where handled interactions are kept (sessionStorage by default), storageKey }.
   */
  function ChatFinalizer(bus, options) {
    if (!(this instanceof ChatFinalizer)) return new ChatFinalizer(bus, options);
    var self = this, opts = options || {};
    self.bus = bus || window.CXBus;
    self.message = typeof opts.message === 'string' && opts.message ? opts.message : DEFAULT_MESSAGE;
    self.provider = opts.provider || null;
    self.onFinalized = opts.onFinalized;
    self.storage = opts.storage || defaultStorage();
    self.storageKey = opts.storageKey || DEFAULT_STORAGE_KEY;
    self.record = load(self.storage, self.storageKey);
    if (!self.bus || typeof self.bus.subscribe !== 'function') {
      warn('no Widgets bus to subscribe to (load the widget first, or use initChatFinalizer as an extension)');
      return;
    }
    function on(event, handler) {
      self.bus.subscribe(event, function (e) {
        try {
          handler.call(self, e);
        } catch (error) {
          warn(event + ': ' + error);
        }
      });
    }
    // The real widget's events: WebChat.started (new chats only) and WebChatService.restored carry no session id,
    // and there is no WebChat.ended. A chat the server ends has no event at all; the next start resets the record.
    on('WebChatService.messageReceived', self.received);
    on('WebChatService.started', function (e) {
      self.reset(sessionIdOf(e && e.data));
    });
    on('WebChatService.restored', function () {
      if (typeof self.bus.command !== 'function') return;
      call('WebChatService.getSessionData', function () {
        return self.bus.command('WebChatService.getSessionData').then(function (data) {
          self.restored(sessionIdOf(data));
        });
      });
    });
    on('WebChatService.ended', self.ended);
    on('WebChatService.sessionLost', self.ended);
  }

  ChatFinalizer.cookiebridge = VERSION;
  ChatFinalizer.DEFAULT_MESSAGE = DEFAULT_MESSAGE;

  ChatFinalizer.prototype.save = function (record) {
    this.record = record;
    try {
      this.storage.setItem(this.storageKey, JSON.stringify(record));
    } catch (e) { /* storage full or gone: the record still holds for this page */ }
  };

  ChatFinalizer.prototype.reset = function (sessionId) {
    this.save(fresh(sessionId));
  };

  // A restored chat: the record this tab kept stays if it is the same chat, and starts over for another one.
  ChatFinalizer.prototype.restored = function (sessionId) {
    var record = this.record;
    if (!sessionId || sessionId === record.session) return;
    if (record.session) {
      this.reset(sessionId);
    } else {
      record.session = sessionId;
      this.save(record);
    }
  };

  // Every state change moves the current interaction forward (a history replay repeats the same steps and lands
  // on the same record); only the latest one can finalize, as in the guide.
  ChatFinalizer.prototype.received = function (event) {
    var changes = stateChanges(event);
    if (!changes.length) return;
    var record = this.record;
    for (var i = 0; i < changes.length; i++) {
      if (changes[i].state === 'Active') record.interaction = changes[i].key || 'unkeyed-' + (++unkeyed);
    }
    var latest = changes[changes.length - 1];
    if ((latest.state === 'Finalizing' || latest.state === 'Completed') && record.handled !== record.interaction) {
      record.handled = record.interaction;
      this.save(record);
      this.finalize(latest);
    } else {
      this.save(record);
    }
  };

  ChatFinalizer.prototype.finalize = function (change) {
    var bus = this.bus, text = this.message, async = isAsyncChat();
    if (async) {
      call('WebChat.injectMessage', function () {
        return bus.command('WebChat.injectMessage', { type: 'text', text: text, bubble: { time: false } });
      });
    } else {
      call('WebChat.endChat', function () {
        return bus.command('WebChat.endChat');
      });
    }
    var notify = this.onFinalized;
    if (typeof notify === 'function') {
      call('onFinalized', function () {
        notify({ state: change.state, index: change.key, action: async ? 'inject' : 'end' });
      });
    }
  };

  ChatFinalizer.prototype.ended = function () {
    this.reset(null);
    var provider = this.provider;
    if (provider && typeof provider.removeCookie !== 'function') provider = provider.provider; // the extension
    if (provider && typeof provider.removeCookie === 'function') {
      call('removeCookie', function () {
        return provider.removeCookie();
      });
    }
  };

  // Genesys Widgets extension: window._genesys.widgets.extensions.ChatFinalizer = initChatFinalizer(options)
  function initChatFinalizer(options) {
    function extension($, CXBus) {
      var plugin = CXBus && typeof CXBus.registerPlugin === 'function' && CXBus.registerPlugin('ChatFinalizer');
      extension.finalizer = new ChatFinalizer(plugin || CXBus, options);
    }
    return extension;
  }

  window.ChatFinalizer = ChatFinalizer;
  window.initChatFinalizer = initChatFinalizer;
})(window);
