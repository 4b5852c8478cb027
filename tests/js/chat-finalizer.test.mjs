// Unit tests of static/chat-finalizer.js against a fake Widgets bus: one notice per interaction, none on a replay.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import vm from 'node:vm';

const SOURCE = readFileSync(new URL('../../static/chat-finalizer.js', import.meta.url), 'utf8');
const KEY = 'cookiebridge.chat-finalizer';

// The tab's sessionStorage, which outlives a page load.
function tabStorage() {
  const items = new Map();
  return {
    items,
    getItem: key => items.has(key) ? items.get(key) : null,
    setItem: (key, value) => items.set(key, String(value)),
    removeItem: key => items.delete(key),
  };
}

// A bus that records the commands it is sent; publish(event, data) calls the subscribers as the widget does.
function fakeBus(sessionData) {
  const subscribers = {}, commands = [];
  return {
    commands,
    subscribe: (event, handler) => (subscribers[event] ||= []).push(handler),
    command: (name, options) => {
      commands.push(JSON.parse(JSON.stringify({ name, options })));
      return Promise.resolve(name === 'WebChatService.getSessionData' ? sessionData : undefined);
    },
    publish: (event, data) => (subscribers[event] || []).forEach(handler => handler({ event, data })),
  };
}

// One page load: the script in a fresh window on the tab's storage, a finalizer subscribed to a fresh bus.
function loadPage({ storage = tabStorage(), async = true, sessionData, options = {} } = {}) {
  const warnings = [];
  const window = { sessionStorage: storage, console: { warn: message => warnings.push(message) },
                   _genesys: { widgets: { webchat: { transport: { async: { enabled: async } } } } } };
  window.window = window;
  vm.runInContext(SOURCE, vm.createContext(window));
  const bus = fakeBus(sessionData), finalized = [];
  const finalizer = window.ChatFinalizer(bus, { onFinalized: details => finalized.push({ ...details }), ...options });
  return { window, bus, finalizer, finalized, warnings, storage };
}

const stateChange = (state, index) =>
  ({ type: 'System', event: 'InteractionStateChange', index, data: { interactionState: state } });
const received = (...messages) => ({ originalMessages: messages, messages: [] });
const notices = bus => bus.commands.filter(command => command.name === 'WebChat.injectMessage');

test('Finalizing then Completed gives one notice, with the guide\'s text', () => {
  const { bus, finalized } = loadPage();
  bus.publish('WebChatService.messageReceived', received(stateChange('Active', 1)));
  bus.publish('WebChatService.messageReceived', received(stateChange('Finalizing', 7)));
  bus.publish('WebChatService.messageReceived', received(stateChange('Completed', 8)));
  assert.equal(notices(bus).length, 1);
  assert.deepEqual(notices(bus)[0].options, {
    type: 'text',
    text: 'Thank you for your query. Please do not respond to this automated message if you do not have additional ' +
      'questions.',
    bubble: { time: false },
  });
  assert.deepEqual(finalized, [{ state: 'Finalizing', index: '7', action: 'inject' }]);
});

test('a history replay in the same page or after a reload injects nothing', () => {
  const history = received(stateChange('Active', 1), stateChange('Finalizing', 2));
  const first = loadPage();
  first.bus.publish('WebChatService.messageReceived', history);
  first.bus.publish('WebChatService.messageReceived', history);
  assert.equal(notices(first.bus).length, 1);
  const reloaded = loadPage({ storage: first.storage });
  reloaded.bus.publish('WebChatService.messageReceived', history);
  assert.equal(notices(reloaded.bus).length, 0);
  assert.deepEqual(reloaded.finalized, []);
});

test('a new interaction (a later Active) is finalized again, and the replay of both stays silent', () => {
  const history = [stateChange('Active', 1), stateChange('Completed', 2), stateChange('Active', 3),
                   stateChange('Finalizing', 4)];
  const page = loadPage();
  page.bus.publish('WebChatService.messageReceived', received(...history.slice(0, 2)));
  page.bus.publish('WebChatService.messageReceived', received(...history.slice(2)));
  assert.equal(notices(page.bus).length, 2);
  const reloaded = loadPage({ storage: page.storage });
  reloaded.bus.publish('WebChatService.messageReceived', received(...history));
  assert.equal(notices(reloaded.bus).length, 0);
});

test('WebChatService.started starts the record over', () => {
  const history = received(stateChange('Active', 1), stateChange('Completed', 2));
  const page = loadPage();
  page.bus.publish('WebChatService.started', { data: { sessionId: 's1' } });
  page.bus.publish('WebChatService.messageReceived', history);
  page.bus.publish('WebChatService.started', { data: { sessionId: 's2' } });
  page.bus.publish('WebChatService.messageReceived', history);
  assert.equal(notices(page.bus).length, 2);
  assert.equal(JSON.parse(page.storage.getItem(KEY)).session, 's2');
});

test('a chat restored with the same session keeps the record; another session starts over', async () => {
  const history = received(stateChange('Active', 1), stateChange('Finalizing', 2));
  const first = loadPage();
  first.bus.publish('WebChatService.started', { data: { sessionId: 's1' } });
  first.bus.publish('WebChatService.messageReceived', history);
  assert.equal(notices(first.bus).length, 1);

  const same = loadPage({ storage: first.storage, sessionData: { sessionId: 's1' } });
  same.bus.publish('WebChatService.restored');
  await new Promise(resolve => setImmediate(resolve));
  same.bus.publish('WebChatService.messageReceived', history);
  assert.equal(notices(same.bus).length, 0);

  const other = loadPage({ storage: first.storage, sessionData: { sessionId: 's2' } });
  other.bus.publish('WebChatService.restored');
  await new Promise(resolve => setImmediate(resolve));
  assert.equal(JSON.parse(first.storage.getItem(KEY)).session, 's2');
  other.bus.publish('WebChatService.messageReceived', history);
  assert.equal(notices(other.bus).length, 1);
});

test('a chat that is not async is ended instead', () => {
  const { bus, finalized } = loadPage({ async: false });
  bus.publish('WebChatService.messageReceived', received(stateChange('Completed', 5)));
  assert.deepEqual(bus.commands.map(command => command.name), ['WebChat.endChat']);
  assert.deepEqual(finalized, [{ state: 'Completed', index: '5', action: 'end' }]);
});

test('malformed messages are skipped, and only the latest state change finalizes', () => {
  const { bus, warnings } = loadPage();
  for (const data of [undefined, null, {}, { originalMessages: 'x' }, received(null, 7, { type: 'System' }),
                      received({ type: 'System', event: 'InteractionStateChange', data: { interactionState: 3 } }),
                      received({ type: 'System', event: 'ParticipantLeft', data: { interactionState: 'Completed' } }),
                      received({ ...stateChange('Completed', 1), type: 'Message' })]) {
    bus.publish('WebChatService.messageReceived', data);
  }
  bus.publish('WebChatService.messageReceived', received(stateChange('Finalizing', 1), stateChange('Active', 2)));
  assert.equal(notices(bus).length, 0);
  assert.deepEqual(warnings, []);
});

test('an ended chat makes the provider forget the session, also when given the extension', () => {
  const removed = [];
  const provider = { removeCookie: () => removed.push('provider') };
  const extension = Object.assign(() => {}, { provider: { removeCookie: () => removed.push('extension') } });
  loadPage({ options: { provider } }).bus.publish('WebChatService.ended');
  loadPage({ options: { provider: extension } }).bus.publish('WebChatService.sessionLost');
  assert.deepEqual(removed, ['provider', 'extension']);
});

test('initChatFinalizer subscribes through a plugin of the bus it is given', () => {
  const { window } = loadPage();
  const bus = fakeBus(), registered = [];
  const extension = window.initChatFinalizer({});
  extension(null, { registerPlugin: name => (registered.push(name), bus) });
  assert.deepEqual(registered, ['ChatFinalizer']);
  assert.ok(extension.finalizer instanceof window.ChatFinalizer);
  bus.publish('WebChatService.messageReceived', received(stateChange('Completed', 1)));
  assert.equal(notices(bus).length, 1);
});

test('without sessionStorage the record is kept in memory', () => {
  const { bus } = loadPage({ storage: null });
  const history = received(stateChange('Active', 1), stateChange('Completed', 2));
  bus.publish('WebChatService.messageReceived', history);
  bus.publish('WebChatService.messageReceived', history);
  assert.equal(notices(bus).length, 1);
});
