/*! cookiebridge iframe | MIT */
// Runs inside the hidden iframe on the bridge origin. It answers only its own parent, and only when the
// parent's origin is exactly one of the trusted origins rendered into iframe.html by the bridge.
//
// Every page view of every site loads it, and rjsmin only strips comments and whitespace, so the source is written
// for size (ES2018, short locals: e = event, r = request).
//
// Protocol (version 1): the parent posts { cookiebridge: 1, op: 'hello' } to this window with a MessagePort. If
// the parent's origin is trusted, this page answers the hello's info on that port, then takes requests on it:
// { op, name, value }, each with a port of its own for the reply { ok, value } or { ok: false, error }.
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

  const named = name => document.cookie.split('; ').filter(c => c.slice(0, c.indexOf('=')) === name);

  // A sibling host under the bridge's registrable domain can toss in a cookie of the same name (Domain=parent;
  // Path=/iframe.html), which document.cookie lists beside ours, and ours is host-only. So expire every domain-wide
  // copy, on each suffix of this host, and answer neither copy if two still remain.
  const read = name => {
    const labels = location.hostname.split('.');
    for (let i = 0; named(name).length > 1 && i < labels.length - 1; i++) {
      document.cookie = name + '=; Max-Age=0' + attributes + '; Domain=' + labels.slice(i).join('.');
    }
    const [found, ...more] = named(name);
    if (more.length) throw 'duplicate-cookie';
    try {
      return decodeURIComponent(found.slice(name.length + 1));
    } catch { // no such cookie (found is undefined), or a value that is not URI-encoded
      return null;
    }
  };

  const write = (name, value, age) => {
    document.cookie = name + '=' + encodeURIComponent(value) + '; Max-Age=' + age + attributes;
  };

  const hello = () => ({ version: 1, maxAge, origins, api: config.api, resume: config.resume });

  // Passive storage access: where this bridge already holds the storage-access permission under this site, use
  // it (no gesture needed once granted, no prompt) before the first answer, so the cookies read are the ones every
  // site reads. No API, no grant, a refusal: the answers come all the same, from the cookies this frame has.
  const access = (async () => (await navigator.permissions.query({ name: 'storage-access' })).state == 'granted' &&
    document.requestStorageAccess())().catch(() => false);

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
    remove: r => !write(r.name, '', 0), // true
    // True only when a cookie written here is the one every trusted site will read: a blocked cookie fails the
    // write-then-read, and a partitioned one (Firefox) passes it, which hasStorageAccess() then exposes.
    test: () => {
      write(TEST, '1', 60);
      const stored = read(TEST) === '1';
      write(TEST, '', 0);
      return stored && (!document.hasStorageAccess || document.hasStorageAccess().catch(() => false));
    },
  };

  // One request, from the port a trusted parent handed over.
  const serve = e => {
    const r = e.data, op = r && r.op, answer = e.ports[0];
    if (!answer) return;
    access.then(() => {
      if (typeof op != 'string' || !operations[op]) throw 'unknown-operation';
      if (op != 'hello' && op != 'test' && !names.includes(r.name)) throw 'name-not-allowed';
      return operations[op](r);
    }).then(
      value => answer.postMessage({ ok: true, value }),
      error => answer.postMessage({ ok: false, error: typeof error == 'string' ? error : 'failed' }));
  };

  addEventListener('message', e => {
    const port = e.ports[0];
    if (e.source !== parent || !origins.includes(e.origin) || !port || !e.data || e.data.cookiebridge !== 1) return;
    port.onmessage = serve;
    access.then(() => port.postMessage(hello()));
  });
})();
