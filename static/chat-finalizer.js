/*! cookiebridge chat-finalizer | MIT */
// The guide's "Close the chat when an agent disconnects" as a Genesys Widgets extension. When the agent finalizes an
// interaction, an async chat gets a notice and any other chat is ended: once per interaction, also across reloads
// and history replays. When the chat ends, the cookie provider (if any) forgets the session.
(function (window) {
  'use strict';
  if (window.ChatFinalizer?.cookiebridge) return; // loaded twice: keep the first
  const VERSION = 1;
  const DEFAULT_MESSAGE = 'Thank you for your query. Please do not respond to this automated message if you do not ' +
    'have additional questions.';
  const DEFAULT_STORAGE_KEY = 'cookiebridge.chat-finalizer';
  const MAX_KEY_LENGTH = 200;
  let unkeyedInteractions = 0;

  const warn = message => window.console?.warn?.('cookiebridge chat-finalizer: ' + message);

  // A missing transport (or any part of the path to it) is not async.
  const isAsyncChat = () => !!window._genesys?.widgets?.webchat?.transport?.async?.enabled;

  // What identifies a state change: its index (or, failing that, its stream id or id), as a string.
  const keyOf = message => {
    const key = message.index ?? message.streamId ?? message.id;
    return typeof key === 'string' || typeof key === 'number' ? String(key).slice(0, MAX_KEY_LENGTH) : null;
  };

  // The interaction state changes of a messageReceived event, oldest first; anything malformed is skipped.
  const stateChanges = event => {
    const messages = event?.data?.originalMessages;
    if (!Array.isArray(messages)) return [];
    return messages
      .filter(message => message?.type === 'System' && message.event === 'InteractionStateChange' &&
        typeof message.data?.interactionState === 'string')
      .map(message => ({ state: message.data.interactionState, key: keyOf(message) }));
  };

  const memoryStorage = () => {
    const items = new Map();
    return {
      getItem: key => items.has(key) ? items.get(key) : null,
      setItem: (key, value) => items.set(key, String(value)),
      removeItem: key => items.delete(key),
    };
  };

  const defaultStorage = () => {
    try {
      const storage = window.sessionStorage; // throws where storage is disabled or the document is sandboxed
      storage.setItem(DEFAULT_STORAGE_KEY + '.probe', '1');
      storage.removeItem(DEFAULT_STORAGE_KEY + '.probe');
      return storage;
    } catch {
      return memoryStorage();
    }
  };

  // What was handled in this tab's chat session: the current interaction (the index of its Active state change,
  // '' for the first one) and the interaction whose finalization was already handled.
  const freshRecord = sessionId => ({ session: sessionId || null, interaction: '', handled: null });

  const loadRecord = (storage, key) => {
    try {
      const record = JSON.parse(storage.getItem(key));
      if (typeof record?.interaction === 'string' && (record.handled === null || typeof record.handled === 'string')) {
        return record;
      }
    } catch { /* missing or unreadable: start over */ }
    return freshRecord(null);
  };

  // WebChatService.started carries the session as { data: { sessionId, participantId, token } }; the
  // WebChatService.getSessionData command answers the same object without the wrapper.
  const sessionIdOf = data => {
    const session = data?.data && typeof data.data === 'object' ? data.data : data;
    const id = session?.sessionId;
    return typeof id === 'string' && id ? id.slice(0, MAX_KEY_LENGTH) : null;
  };

  // Runs a widget command or a callback; what it throws or rejects with becomes a warning.
  const attempt = (what, action) => {
    try {
      const result = action();
      if (typeof result?.then === 'function') result.then(null, error => warn(what + ' failed: ' + error));
    } catch (error) {
      warn(what + ' failed: ' + error);
    }
  };

  /**
   * ChatFinalizer(bus, options), with or without `new`: bus is the Widgets bus (CXBus, or a plugin registered on it;
   * default window.CXBus). options: { message: the notice for async chats (the guide's text by default), provider: a
   * CookieProvider (or the CookieProviderExtension) whose removeCookie() runs when the chat ends,
   * onFinalized(details), storage: where handled interactions are kept (sessionStorage by default), storageKey }.
   * A function rather than a class, since the guide's way of calling it has no `new`.
   */
  function ChatFinalizer(bus, options) {
    if (!(this instanceof ChatFinalizer)) return new ChatFinalizer(bus, options);
    const settings = options || {};
    this.bus = bus || window.CXBus;
    this.message = typeof settings.message === 'string' && settings.message ? settings.message : DEFAULT_MESSAGE;
    this.provider = settings.provider || null;
    this.onFinalized = settings.onFinalized;
    this.storage = settings.storage || defaultStorage();
    this.storageKey = settings.storageKey || DEFAULT_STORAGE_KEY;
    this.record = loadRecord(this.storage, this.storageKey);
    if (typeof this.bus?.subscribe !== 'function') {
      warn('no Widgets bus to subscribe to (load the widget first, or use initChatFinalizer as an extension)');
      return;
    }
    const on = (eventName, handler) => this.bus.subscribe(eventName, event => {
      try {
        handler(event);
      } catch (error) {
        warn(eventName + ': ' + error);
      }
    });
    // The real widget's events: WebChat.started (new chats only) and WebChatService.restored carry no session id,
    // and there is no WebChat.ended. A chat the server ends has no event at all; the next start resets the record.
    on('WebChatService.messageReceived', event => this.received(event));
    on('WebChatService.started', event => this.reset(sessionIdOf(event?.data)));
    on('WebChatService.restored', () => {
      if (typeof this.bus.command !== 'function') return;
      attempt('WebChatService.getSessionData', () => this.bus.command('WebChatService.getSessionData')
        .then(data => this.restored(sessionIdOf(data))));
    });
    on('WebChatService.ended', () => this.ended());
    on('WebChatService.sessionLost', () => this.ended());
  }

  ChatFinalizer.cookiebridge = VERSION;
  ChatFinalizer.DEFAULT_MESSAGE = DEFAULT_MESSAGE;

  Object.assign(ChatFinalizer.prototype, {
    save(record) {
      this.record = record;
      try {
        this.storage.setItem(this.storageKey, JSON.stringify(record));
      } catch { /* storage full or gone: the record still holds for this page */ }
    },

    reset(sessionId) {
      this.save(freshRecord(sessionId));
    },

    // A restored chat: the record this tab kept stays if it is the same chat, and starts over for another one.
    restored(sessionId) {
      const record = this.record;
      if (!sessionId || sessionId === record.session) return;
      if (record.session) {
        this.reset(sessionId);
      } else {
        record.session = sessionId;
        this.save(record);
      }
    },

    // Every state change moves the current interaction forward (a history replay repeats the same steps and lands
    // on the same record); only the latest one can finalize, as in the guide.
    received(event) {
      const changes = stateChanges(event);
      if (!changes.length) return;
      const record = this.record;
      for (const change of changes) {
        if (change.state === 'Active') record.interaction = change.key || 'unkeyed-' + ++unkeyedInteractions;
      }
      const latest = changes[changes.length - 1];
      const finalizing = latest.state === 'Finalizing' || latest.state === 'Completed';
      if (finalizing && record.handled !== record.interaction) {
        record.handled = record.interaction;
        this.save(record);
        this.finalize(latest);
      } else {
        this.save(record);
      }
    },

    finalize(change) {
      const { bus, message: text, onFinalized } = this, isAsync = isAsyncChat();
      if (isAsync) {
        attempt('WebChat.injectMessage', () =>
          bus.command('WebChat.injectMessage', { type: 'text', text, bubble: { time: false } }));
      } else {
        attempt('WebChat.endChat', () => bus.command('WebChat.endChat'));
      }
      if (typeof onFinalized === 'function') {
        attempt('onFinalized', () => {
          onFinalized({ state: change.state, index: change.key, action: isAsync ? 'inject' : 'end' });
        });
      }
    },

    ended() {
      this.reset(null);
      let provider = this.provider;
      if (provider && typeof provider.removeCookie !== 'function') provider = provider.provider; // the extension
      if (typeof provider?.removeCookie === 'function') attempt('removeCookie', () => provider.removeCookie());
    },
  });

  // Genesys Widgets extension: window._genesys.widgets.extensions.ChatFinalizer = initChatFinalizer(options)
  const initChatFinalizer = options => {
    // Genesys Widgets call an extension with ($, CXBus, Common).
    function extension($, CXBus) {
      const plugin = typeof CXBus?.registerPlugin === 'function' && CXBus.registerPlugin('ChatFinalizer');
      extension.finalizer = new ChatFinalizer(plugin || CXBus, options);
    }
    return extension;
  };

  window.ChatFinalizer = ChatFinalizer;
  window.initChatFinalizer = initChatFinalizer;
})(window);
