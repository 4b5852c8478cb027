// Runs inside the bridge iframe, before the bridge's own script, when iframe.html is served through the probe
// proxy: counts messages, records uncaught errors and prototype pollution, and reports them on {cbProbe: 'report'}.
(function () {
  var builtins = Object.getOwnPropertyNames(Object.prototype).concat(Object.getOwnPropertyNames(Array.prototype));
  var probe = { errors: [], received: 0 };
  addEventListener('error', function (e) { probe.errors.push(String(e.message || e)); });
  addEventListener('unhandledrejection', function (e) { probe.errors.push('rejection: ' + e.reason); });
  addEventListener('message', function (e) {
    if (e.data && e.data.cbProbe === 'report') {
      var now = Object.getOwnPropertyNames(Object.prototype).concat(Object.getOwnPropertyNames(Array.prototype));
      var cookie;
      try { cookie = document.cookie; } catch (error) { cookie = 'no cookie jar: ' + error.name; } // sandboxed: opaque
      e.source.postMessage({ cbProbeReport: { errors: probe.errors, received: probe.received, cookie: cookie,
        polluted: now.filter(function (k) { return builtins.indexOf(k) < 0; }) } }, '*');
    } else {
      probe.received++;
    }
  });
})();
