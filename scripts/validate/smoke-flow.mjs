// Socket.IO smoke flow: sell, order, pay with the test card, see the stuff sold live.
import { createRequire } from 'node:module';
const require = createRequire(new URL('../../web-client/package.json', import.meta.url));
const { io } = require('socket.io-client');
const U = process.argv[2];
const fail = (m) => { console.error('smoke:', m); process.exit(1); };
setTimeout(() => fail('timed out'), 30000).unref();
const signup = async (email) => {
  const r = await fetch(`${U}/api/users/signup`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email, password: 'password123' }) });
  if (r.status !== 201) fail(`signup ${email}: ${r.status}`);
  return (await r.json()).accessToken;
};
const connect = (token) => new Promise((res, rej) => {
  const s = io(U, { auth: token ? { token } : {}, transports: ['websocket'] });
  s.on('connect', () => res(s)); s.on('connect_error', (e) => rej(e));
});
const ask = async (s, ev, p) => { const a = await s.timeout(10000).emitWithAck(ev, p); if (!a.data) fail(`${ev}: ${JSON.stringify(a)}`); return a.data; };
const [st, bt] = [await signup('seller@smoke.example'), await signup('buyer@smoke.example')];
const [seller, buyer, viewer] = [await connect(st), await connect(bt), await connect(null)];
const sold = (id) => new Promise((res) => viewer.on('stuff:updated', (s) => { if (s.id === id && s.status === 'sold') res(); }));
const stuff = await ask(seller, 'stuff:create', { title: 'Smoke test', priceCents: 100, secretNote: 'smoke' });
const seen = sold(stuff.id);
const order = await ask(buyer, 'order:create', { stuffId: stuff.id });
const payment = await ask(buyer, 'payment:create', { orderId: order.id, paymentMethod: 'pm_card_visa' });
await seen;
console.log(`smoke: Socket.IO flow ok (order ${order.id} paid ${payment.amountCents} cents, stuff sold live)`);
for (const s of [seller, buyer, viewer]) s.close();
process.exit(0);
