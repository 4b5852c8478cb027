// Evaluated by the test in the page (args: the cookie name); returns [expected reply, message, lab.ask options]
// cases. Requests on an established session port from the trusted parent (each case opens its own session with a
// valid hello), and malformed hellos. Version and id fields of requests are ignored now: a request is whatever
// arrives on the session port, and its reply goes to the port that came with it.
const name = args[0];
const nested = (depth, leaf) => { let v = leaf; for (let i = 0; i < depth; i++) v = { a: v }; return v; };
const deepArray = (depth) => { let v = []; for (let i = 0; i < depth; i++) v = [v]; return v; };
return [
  // [expected reply: an error, true (answered ok) or null (no reply at all), message, lab.ask options]
  // Requests on the session port:
  ['too-large', { cookiebridge: 1, id: 'big', op: 'set', name: name, value: 'x'.repeat(1 << 20) }],
  [true, { cookiebridge: 1, id: 'i'.repeat(65), op: 'get', name: name }],
  ['name-not-allowed', { cookiebridge: 1, id: 'deep-name', op: 'get', name: nested(2000, name) }],
  ['bad-value', { cookiebridge: 1, id: 'deep-value', op: 'set', name: name, value: deepArray(2000) }],
  ['unknown-operation', nested(2000, { cookiebridge: 1, id: 'deep-envelope', op: 'get', name: name })],
  ['unknown-operation', JSON.stringify({ cookiebridge: 1, id: 'json-string', op: 'get', name: name })],
  ['unknown-operation', 'get ' + name], ['unknown-operation', 42], ['unknown-operation', null],
  ['unknown-operation', [1, 'get', name]], ['unknown-operation', true], ['unknown-operation', new ArrayBuffer(16)],
  ['unknown-operation', new Date(0)], ['unknown-operation', /get/], ['unknown-operation', new Map([['op', 'get']])],
  [true, { cookiebridge: '1', id: 'string-version', op: 'get', name: name }],
  [true, { cookiebridge: 2, id: 'future-version', op: 'get', name: name }],
  [true, { cookiebridge: 1, id: 7, op: 'get', name: name }],
  [true, { op: 'get', name: name }],
  ['unknown-operation', { cookiebridge: 1, id: 'op-proto', op: '__proto__' }],
  ['unknown-operation', { cookiebridge: 1, id: 'op-constructor', op: 'constructor' }],
  ['unknown-operation', { cookiebridge: 1, id: 'op-hasown', op: 'hasOwnProperty' }],
  ['unknown-operation', { cookiebridge: 1, id: 'op-tostring', op: 'toString' }],
  ['unknown-operation', { cookiebridge: 1, id: 'op-array', op: ['get'] }],
  ['unknown-operation', { cookiebridge: 1, id: 'op-upper', op: 'GET', name: name }],
  ['unknown-operation', { id: 'op-missing', name: name, value: 'attacker' }],
  ['name-not-allowed', { cookiebridge: 1, id: 'name-missing', op: 'get' }],
  ['name-not-allowed', { cookiebridge: 1, id: 'name-proto', op: 'get', name: '__proto__' }],
  ['name-not-allowed', { cookiebridge: 1, id: 'name-constructor', op: 'set', name: 'constructor', value: 'x' }],
  ['name-not-allowed', JSON.parse('{"cookiebridge":1,"id":"proto-key","op":"set","name":"__proto__","value":"x","__proto__":{"polluted":1}}')],
  ['name-not-allowed', { cookiebridge: 1, id: 'ctor-key', op: 'set', name: 'x', value: 'x', constructor: { prototype: { polluted: 1 } } }],
  ['name-not-allowed', { cookiebridge: 1, id: 'other-cookie', op: 'set', name: 'other-cookie', value: 'attacker' }],
  ['name-not-allowed', { cookiebridge: 1, id: 'test-cookie', op: 'get', name: '__cookiebridge_test' }],
  ['name-not-allowed', { cookiebridge: 1, id: 'upper', op: 'set', name: name.toUpperCase(), value: 'attacker' }],
  ['name-not-allowed', { cookiebridge: 1, id: 'padded', op: 'remove', name: name + ' ' }],
  ['name-not-allowed', { cookiebridge: 1, id: 'name-array', op: 'get', name: [name] }],
  ['bad-value', { cookiebridge: 1, id: 'value-object', op: 'set', name: name, value: { toString: 'attacker' } }],
  ['bad-value', { cookiebridge: 1, id: 'value-number', op: 'set', name: name, value: 42 }],
  [true, JSON.parse('{"cookiebridge":1,"id":"own-proto","op":"get","name":"' + name + '","__proto__":{"op":"set","value":"attacker"}}')],
  // A request without a reply port: nobody to answer (and nothing more on the session port).
  [null, { cookiebridge: 1, id: 'no-reply-port', op: 'set', name: name, value: 'attacker' }, { reply: false }],
  // Hellos, posted with a fresh port: only { cookiebridge: 1 } with a port is a hello.
  [true, { cookiebridge: 1, id: 'hello-extra-keys', op: 'hello', name: '__proto__', constructor: { prototype: { polluted: 1 } } }],
  [null, { cookiebridge: 2, id: 'hello-future-version', op: 'hello' }],
  [null, { cookiebridge: '1', id: 'hello-string-version', op: 'hello' }],
  [null, { cookiebridge: true, id: 'hello-true-version', op: 'hello' }],
  [null, { id: 'hello-no-version', op: 'hello' }],
  [null, { cookiebridge: 1, id: 'hello-no-port', op: 'hello' }, { port: false }],
  [null, 'hello', { hello: true }],
  [null, JSON.stringify({ cookiebridge: 1, op: 'hello' }), { hello: true }],
  [null, [{ cookiebridge: 1, op: 'hello' }], { hello: true }],
  [null, new Map([['cookiebridge', 1], ['op', 'hello']]), { hello: true }],
];
