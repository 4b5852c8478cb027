// A trusted page that a test frames inside an untrusted one: it uses the real bridge, and the probe directly.
// Its configuration comes in location.hash; it reports to its parent as {victimResult}.
(async function () {
  var config = JSON.parse(decodeURIComponent(location.hash.slice(1)));
  var began = Date.now();
  var provider = new CookieProvider(config.name, config.bridge + '/iframe.html', { timeout: config.timeout });
  var loaded = await provider.loadCookie();
  var tested = await provider.cookieTest();
  var waited = Date.now() - began;
  var probe = (await lab.frame(config.probe + '/iframe.html')).contentWindow;
  lab.ask(probe, { cookiebridge: 1, id: 'own-hello', op: 'hello' }, config.probeOrigin);
  await lab.sleep(500);
  parent.postMessage({ victimResult: { loaded: loaded, tested: tested, waited: waited,
    probeAnswered: lab.replies(probe).some(function (m) {
      return m.origin === 'port' && m.data.id === 'own-hello' && m.data.ok === true && m.data.value.version === 1;
    }) } }, '*');
})();
