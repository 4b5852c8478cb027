// Evaluated by the test in the page (args: cookie name, iframe URL, origins, timeout, identity token): every
// provider call against a misbehaving bridge, timed, with the page's own work ticking meanwhile.
const [name, iframeUrl, origins, timeout, token] = args;
let ticks = 0;
const ticker = setInterval(() => ticks++, 50);  // the page's own work must keep running
const failures = [];
const provider = new CookieProvider(name, iframeUrl, { timeout, origins, identity: token,
  onError: (operation, error) => failures.push(operation + ':' + error) });
document.cookie = name + '=current-session; Path=/; Secure; SameSite=Lax';
const timed = async (promise) => { const began = performance.now(); const value = await promise;
  return { value, ms: Math.round(performance.now() - began) }; };
const result = {
  load: await timed(provider.loadCookie()),
  save: await timed(provider.saveCookie()),
  test: await timed(provider.cookieTest()),
  link: await timed(provider.decorate(origins[1] + '/next')),
};
clearInterval(ticker);
return { result, ticks, failures: failures, cookie: document.cookie.includes(name + '=current-session') };
