// Evaluated by the test in the page (args: cookie name, probe URL, message count, seed, whether this page is a
// trusted parent): seeded random messages to a probe iframe; returns what was sent, what came back and the probe's
// report.
const [name, probeUrl, count, seed, trusted] = args;
let state = seed >>> 0;
const rnd = () => { state = (state * 1664525 + 1013904223) >>> 0; return state / 4294967296; };
const pick = (list) => list[Math.floor(rnd() * list.length)];
const words = ['hello', 'get', 'set', 'remove', 'test', '__proto__', 'constructor', 'toString', '', 'valueOf', name,
               'other', '__cookiebridge_test', name.toUpperCase(), 'x'.repeat(70), '\u0000', '\ud800', '💥'];
const anything = (depth) => {
  const kind = Math.floor(rnd() * (depth > 3 ? 6 : 9));
  switch (kind) {
    case 0: return null;
    case 1: return rnd() < 0.5;
    case 2: return Math.floor(rnd() * 2e9) - 1e9;
    case 3: return pick([NaN, Infinity, -0, 1e308, 0.5]);
    case 4: return pick(words);
    case 5: return 'r' + Math.floor(rnd() * 1e6).toString(36).repeat(Math.floor(rnd() * 40));
    case 6: { const a = []; for (let i = rnd() * 4; i > 0; i--) a.push(anything(depth + 1)); return a; }
    case 7: { const o = {}; for (let i = rnd() * 4; i > 0; i--) o[pick(words.concat(['cookiebridge', 'id', 'op', 'name', 'value']))] = anything(depth + 1); return o; }
    default: return pick([new Date(0), new Uint8Array(4), /re/g, new Map(), new Set([1]), new ArrayBuffer(2)]);
  }
};
const messages = [];
for (let i = 0; i < count; i++) {
  const roll = rnd();
  let message;
  if (roll < 0.35) message = anything(0);
  else {
    message = { cookiebridge: roll < 0.9 ? 1 : anything(2), id: roll < 0.8 ? 'f' + i : anything(2), op: rnd() < 0.7 ? pick(words) : anything(2) };
    if (rnd() < 0.7) message.name = rnd() < 0.5 ? name : anything(1);
    if (rnd() < 0.6) message.value = anything(1);
    if (rnd() < 0.2) message[pick(words)] = anything(1);
  }
  messages.push(message);
}
const probeOrigin = new URL(probeUrl).origin;
const bridge = (await lab.frame(probeUrl + '/iframe.html')).contentWindow;
// Each message goes out plainly and in its own session (lab.ask): a request after a valid hello, or, when its op is
// 'hello', as the hello itself. Replies are counted per message: the fuzzed ids are mere data now.
const expected = new Map();  // 'f' + index -> replies due on its port: 1 per request, 1 per valid hello, else 0
let sent = 0, requests = 0;
messages.forEach((m, i) => {
  const id = 'f' + i;
  try { lab.ask(bridge, m, probeOrigin, { id }); sent++; } catch (e) { return; }
  const hello = m !== null && typeof m === 'object' && m.op === 'hello';
  if (!hello) requests++;
  expected.set(id, hello ? (m.cookiebridge === 1 ? 1 : 0) : 1);
});
// A trusted parent waits until every due answer is in (a loaded machine takes longer than a quiet one); then both
// wait a while longer, for answers that must not come (a second reply, or any reply to an untrusted parent).
const due = [...expected.values()].reduce((a, b) => a + b, 0);
const onPorts = () => lab.replies(bridge).filter(r => r.origin === 'port').length;
for (const deadline = Date.now() + 20000; trusted && onPorts() < due && Date.now() < deadline;) await lab.sleep(100);
await lab.sleep(trusted ? 1000 : 2000);
const all = lab.replies(bridge), answers = all.filter(r => r.origin === 'port').map(r => r.data);
const answered = new Map();
for (const r of answers) answered.set(r.id, (answered.get(r.id) || 0) + 1);
const mismatched = [...new Set([...expected.keys(), ...answered.keys()])]
  .filter(id => (expected.get(id) || 0) !== (answered.get(id) || 0)).map(id => JSON.stringify(id));
const documented = ['unknown-operation', 'name-not-allowed', 'bad-value', 'too-large', 'not-stored', 'failed'];
return { sent, requests, valid: due, answered: answers.length, mismatched,
         malformed: answers.filter(r => typeof r.ok !== 'boolean' || (r.ok ? !('value' in r) : typeof r.error !== 'string'))
           .map(r => JSON.stringify(r)).slice(0, 10),
         errors: [...new Set(answers.filter(r => r.ok === false).map(r => r.error))],
         undocumented: answers.filter(r => r.ok === false && !documented.includes(r.error)).length,
         sessions: all.filter(r => r.origin === 'session').length,
         window: all.filter(r => r.origin !== 'port' && r.origin !== 'session').length,
         total: lab.allReplies().length,
         probe: await lab.report(bridge) };
