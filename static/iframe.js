/*! cookiebridge iframe | MIT License | https://github.com/cookiebridge/cookiebridge */
// Runs inside the hidden iframe on the bridge origin. It answers only its own parent, and only when the
// parent's origin is exactly one of the trusted origins rendered into iframe.html by the bridge.
//
// Every page view of every site loads it, and rjsmin only strips comments and whitespace, so the source is written
// for size (ES2018, short locals: e = event, r = request). Messages carry cookiebridge: 1, the protocol version.
(() => {
  let config;
  try {
    config = JSON.parse(document.getElementById('cookiebridge-config').textContent);
  } catch {
    return;
  }
  const parent = window.parent;
  if (!config || parent === window) return;
  const { origins, names, maxAge } = config, TEST = '__cookiebridge_test';
  // Scoped to this page's path so that no other request to the bridge carries the session cookies.
  const attributes = '; Path=' + location.pathname + (isSecureContext ? '; Secure; SameSite=None' : '; SameSite=Lax');

  const read = name => {
    for (const c of document.cookie ? document.cookie.split('; ') : []) {
      const eq = c.indexOf('=');
      if (c.slice(0, eq) === name) {
        try {
          return decodeURIComponent(c.slice(eq + 1));
        } catch {
          return null;
        }
      }
    }
    return null;
  };

  const write = (name, value, age) => {
    document.cookie = name + '=' + encodeURIComponent(value) + '; Max-Age=' + age + attributes;
  };

  const hello = () => ({ version: 1, maxAge, origins, api: config.api });

  // A null prototype: only these names are operations, not 'constructor' or 'toString'.
  const operations = {
    __proto__: null,
    hello,
    get: r => read(r.name),
    set: ({ name, value }) => {
      if (typeof value != 'string') throw 'bad-value';
      // 4096 bytes of name and value: what every engine stores at least.
      if (name.length + 1 + encodeURIComponent(value).length > 4096) throw 'too-large';
      write(name, value, maxAge);
      if (read(name) !== value) throw 'not-stored';
      return true;
    },
    remove: r => {
      write(r.name, '', 0);
      return true;
    },
    // True only when a cookie written here is the one every trusted site will read: a blocked cookie fails the
    // write-then-read, and a partitioned one (Firefox) passes it, which hasStorageAccess() then exposes.
    test: () => {
      write(TEST, '1', 60);
      const stored = read(TEST) === '1';
      write(TEST, '', 0);
      return stored && (!document.hasStorageAccess || document.hasStorageAccess().catch(() => false));
    },
  };

  addEventListener('message', e => {
    const r = e.data, id = r && r.id, op = r && r.op;
    const reply = (ok, value) => e.source.postMessage({ cookiebridge: 1, id, ok, [ok ? 'value' : 'error']: value }, e.origin);
    if (e.source !== parent || !origins.includes(e.origin) || !r || r.cookiebridge !== 1) return;
    if (typeof id != 'string' || id.length > 64) return;
    if (typeof op != 'string' || !operations[op]) return reply(false, 'unknown-operation');
    if (op != 'hello' && op != 'test' && !names.includes(r.name)) return reply(false, 'name-not-allowed');
    new Promise(resolve => resolve(operations[op](r))).then(
      value => reply(true, value),
      error => reply(false, typeof error == 'string' ? error : 'failed'));
  });

  // Tell the parent we listen, so it need not wait for its next hello. The browser delivers this only when the
  // parent really has that origin, so a wrong guess leaks nothing.
  let guess = location.ancestorOrigins && location.ancestorOrigins[0];
  try {
    guess = guess || new URL(document.referrer).origin;
  } catch { /* no usable referrer: the parent's hello polling covers it */ }
  if (origins.includes(guess)) parent.postMessage({ cookiebridge: 1, id: 'ready', ok: true, value: hello() }, guess);
})();
