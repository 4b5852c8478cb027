// Loaded by every attack-lab page (trusted harness, attacker pages, sandboxed and data: frames) as /lab.js.
(function () {
  'use strict';
  var inbox = [];
  window.__errors = [];
  addEventListener('error', function (e) { window.__errors.push(String(e.message || e)); });
  addEventListener('unhandledrejection', function (e) { window.__errors.push('rejection: ' + e.reason); });
  addEventListener('message', function (event) { inbox.push({ source: event.source, origin: event.origin, data: event.data }); });

  function sleep(ms) { return new Promise(function (resolve) { setTimeout(resolve, ms); }); }

  function frame(src, attributes, parent) {
    return new Promise(function (resolve) {
      var element = document.createElement('iframe');
      Object.keys(attributes || {}).forEach(function (key) { element.setAttribute(key, attributes[key]); });
      var done = function () { resolve(element); };
      element.addEventListener('load', done, { once: true });
      setTimeout(done, 4000); // a frame the CSP blocks may never fire load
      if (src) element.src = src;
      (parent || document.body || document.documentElement).appendChild(element);
    });
  }

  function plain(message) { return { origin: message.origin, data: message.data }; }
  function isProbe(data) { return !!(data && (data.cbProbeReport || data.childResult || data.victimResult)); }
  // Everything a window sent us except test instrumentation.
  function replies(win) {
    return inbox.filter(function (m) { return m.source === win && !isProbe(m.data); }).map(plain);
  }
  function allReplies() { return inbox.filter(function (m) { return !isProbe(m.data); }).map(plain); }

  async function waitFor(predicate, ms) {
    for (var waited = 0; waited < ms; waited += 50) {
      var found = inbox.filter(predicate)[0];
      if (found) return found.data;
      await sleep(50);
    }
    return null;
  }

  async function report(win) {
    var since = inbox.length;
    win.postMessage({ cbProbe: 'report' }, '*');
    var data = await waitFor(function (m) { return inbox.indexOf(m) >= since && m.source === win && m.data && m.data.cbProbeReport; }, 3000);
    return data && data.cbProbeReport;
  }

  // Sends `message` to the bridge iframe `win` both ways an attacker could try:
  //  (a) as a plain window message (the shape of the retired id-based protocol): nothing may ever answer it;
  //  (b) in the real protocol: a hello carrying a fresh MessagePort (the session), then, unless the message is
  //      itself a hello (op 'hello', or options.hello), `message` posted on that session port with a reply port.
  // Replies on the reply port (or, for a hello, on the session port) go into the inbox as
  //   { source: win, origin: 'port', data: { id, ...reply } }   (a hello's info: { id, ok: true, value: info }),
  // so replies(win) / allReplies() / waitFor see them. The hello answer of a session opened for a request is
  // recorded too, as origin 'session' (data: { id, ok: true, value: info }): anything the iframe posts is seen.
  // options: id (what replies are recorded under; default message.id), hello (post `message` itself as the
  // hello), port: false (a hello without any port), reply: false (a request without a reply port).
  // Throws (e.g. DataCloneError) before anything is sent when `message` cannot be cloned.
  var held = [];  // every port of ours, so that none is garbage-collected while a reply may still come
  function ask(win, message, targetOrigin, options) {
    options = options || {};
    var id = 'id' in options ? options.id : (message !== null && typeof message === 'object' ? message.id : undefined);
    var isHello = !!options.hello || (message !== null && typeof message === 'object' && message.op === 'hello');
    var record = function (origin, reply) {
      var data = { id: id };
      if (reply !== null && typeof reply === 'object') Object.keys(reply).forEach(function (k) { data[k] = reply[k]; });
      else data.raw = reply;
      inbox.push({ source: win, origin: origin, data: data });
    };
    win.postMessage(message, targetOrigin);  // (a)
    if (options.port === false) { win.postMessage(message, targetOrigin); return; }  // (b) a hello without a port
    var session = new MessageChannel();
    held.push(session.port1);
    session.port1.onmessage = function (e) { record(isHello ? 'port' : 'session', { ok: true, value: e.data }); };
    win.postMessage(isHello ? message : { cookiebridge: 1, op: 'hello' }, targetOrigin, [session.port2]);
    if (isHello) return;
    if (options.reply === false) { session.port1.postMessage(message); return; }
    var reply = new MessageChannel();
    held.push(reply.port1);
    reply.port1.onmessage = function (e) { record('port', e.data); };
    session.port1.postMessage(message, [reply.port2]);
  }

  // The protocol messages an attacker tries: read, probe, overwrite and delete the session cookie.
  function attackMessages(name) {
    return [
      { cookiebridge: 1, id: 'h', op: 'hello' },
      { cookiebridge: 1, id: 'g', op: 'get', name: name },
      { cookiebridge: 1, id: 't', op: 'test' },
      { cookiebridge: 1, id: 's', op: 'set', name: name, value: 'attacker-session' },
      { cookiebridge: 1, id: 'r', op: 'remove', name: name }
    ];
  }

  // An attacker's page or frame: message bridge iframes (its own children, or frames of its parent given by
  // index), then tell the parent what came back.
  async function attack(config) {
    try {
      return await attackOnce(config);
    } catch (error) {
      window.__errors.push('attack: ' + error);
      parent.postMessage({ childResult: { origin: self.origin, replies: allReplies(), reports: [], errors: window.__errors } }, '*');
    }
  }

  async function attackOnce(config) {
    var targets = [];
    if (config.own) {
      for (var i = 0; i < config.own.length; i++) targets.push((await frame(config.own[i])).contentWindow);
    }
    (config.siblings || []).forEach(function (index) { targets.push(parent.frames[index]); });
    targets.forEach(function (win) {
      attackMessages(config.name).forEach(function (message) {
        try { ask(win, message, '*'); } catch (e) { window.__errors.push('post: ' + e); }
      });
    });
    await sleep(800);
    var reports = [];  // from the frames config.report names (probe frames: others would never answer)
    for (var j = 0; j < (config.report || []).length; j++) reports.push(await report(targets[config.report[j]]));
    var result = { origin: self.origin, replies: allReplies(), reports: reports, errors: window.__errors };
    parent.postMessage({ childResult: result }, '*');
    return result;
  }

  async function childResult(ms) {
    var data = await waitFor(function (m) { return m.data && m.data.childResult; }, ms || 8000);
    return data && data.childResult;
  }

  window.lab = { inbox: inbox, sleep: sleep, frame: frame, replies: replies, allReplies: allReplies, report: report,
                 waitFor: waitFor, attack: attack, attackMessages: attackMessages, childResult: childResult, ask: ask };
})();
