/*! cookiebridge iframe | MIT License | https://github.com/cookiebridge/cookiebridge */
// Runs inside the hidden iframe on the bridge origin. It answers only its own parent, and only when the
// parent's origin is exactly one of the trusted origins rendered into iframe.html by the bridge.
(function (window, document) {
  'use strict';
  var VERSION = 1;
  var MAX_COOKIE_BYTES = 4096; // name + value, what every engine stores at least
  var TEST_COOKIE = '__cookiebridge_test';
  var config;
  try {
    config = JSON.parse(document.getElementById('cookiebridge-config').textContent);
  } catch (e) {
    return;
  }
  var parent = window.parent;
  if (!config || parent === window) return;
  var origins = config.origins, names = config.names;
  // Scoped to this page's path so that no other request to the bridge carries the session cookies.
  var attributes = '; Path=' + location.pathname +
    (window.isSecureContext ? '; Secure; SameSite=None' : '; SameSite=Lax');

  function has(list, item) {
    for (var i = 0; i < list.length; i++) if (list[i] === item) return true;
    return false;
  }

  function readCookie(name) {
    var parts = document.cookie ? document.cookie.split('; ') : [];
    for (var i = 0; i < parts.length; i++) {
      var eq = parts[i].indexOf('=');
      if (parts[i].slice(0, eq) === name) {
        try {
          return decodeURIComponent(parts[i].slice(eq + 1));
        } catch (e) {
          return null;
        }
      }
    }
    return null;
  }

  function writeCookie(name, value, maxAge) {
    document.cookie = name + '=' + encodeURIComponent(value) + '; Max-Age=' + maxAge + attributes;
  }

  function reply(event, id, ok, value) {
    var message = { cookiebridge: VERSION, id: id, ok: ok };
    message[ok ? 'value' : 'error'] = value;
    event.source.postMessage(message, event.origin);
  }

  function storageAccess() {
    if (!document.hasStorageAccess) return Promise.resolve(true);
    return document.hasStorageAccess().then(null, function () { return false; });
  }

  var operations = {
    hello: function () {
      return { version: VERSION, maxAge: config.maxAge, origins: origins, api: config.api };
    },
    get: function (request) {
      return readCookie(request.name);
    },
    set: function (request) {
      var value = request.value;
      if (typeof value !== 'string') throw 'bad-value';
      if (request.name.length + 1 + encodeURIComponent(value).length > MAX_COOKIE_BYTES) throw 'too-large';
      writeCookie(request.name, value, config.maxAge);
      if (readCookie(request.name) !== value) throw 'not-stored';
      return true;
    },
    remove: function (request) {
      writeCookie(request.name, '', 0);
      return true;
    },
    // True only when a cookie written here is the one every trusted site will read: a blocked cookie fails the
    // write-then-read, and a partitioned one (Firefox) passes it, which hasStorageAccess() then exposes.
    test: function () {
      writeCookie(TEST_COOKIE, '1', 60);
      var stored = readCookie(TEST_COOKIE) === '1';
      writeCookie(TEST_COOKIE, '', 0);
      return stored ? storageAccess() : false;
    }
  };
  var needsName = { get: 1, set: 1, remove: 1 };

  window.addEventListener('message', function (event) {
    var request = event.data;
    if (event.source !== parent || !has(origins, event.origin)) return;
    if (!request || typeof request !== 'object' || request.cookiebridge !== VERSION) return;
    var id = request.id, op = request.op;
    if (typeof id !== 'string' || id.length > 64) return;
    if (typeof op !== 'string' || !Object.prototype.hasOwnProperty.call(operations, op)) {
      return reply(event, id, false, 'unknown-operation');
    }
    if (needsName[op] && !has(names, request.name)) return reply(event, id, false, 'name-not-allowed');
    var result;
    try {
      result = operations[op](request);
    } catch (error) {
      return reply(event, id, false, typeof error === 'string' ? error : 'failed');
    }
    Promise.resolve(result).then(function (value) {
      reply(event, id, true, value);
    });
  });

  // Tell the parent we listen, so it need not wait for its next hello. The browser delivers this only when the
  // parent really has that origin, so a wrong guess leaks nothing.
  var guess = (location.ancestorOrigins && location.ancestorOrigins[0]) || '';
  if (!guess && document.referrer) {
    try {
      guess = new URL(document.referrer).origin;
    } catch (e) { /* no usable referrer: the parent's hello polling covers it */ }
  }
  if (has(origins, guess)) {
    parent.postMessage({ cookiebridge: VERSION, id: 'ready', ok: true, value: operations.hello() }, guess);
  }
})(window, document);
