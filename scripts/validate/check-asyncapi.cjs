#!/usr/bin/env node
// Validates docs/asyncapi.yaml with the official AsyncAPI parser and checks that it, the
// generated JSON Schemas (docs/schemas/) and the contract pages agree with the code.
//
//   node scripts/validate/check-asyncapi.cjs --deps DIR [--root DIR] [--self-test]
//
// --deps      directory with node_modules/@asyncapi/parser and js-yaml (scripts/validate-asyncapi.sh
//             installs them into ${XDG_CACHE_HOME:-~/.cache}/stuffmart/asyncapi)
// --root      the repository (default: two levels above this file)
// --self-test also break copies of the files on purpose and make sure every check notices
//
// Exit 0 when everything holds, 1 with one line per problem otherwise.
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const { createRequire } = require('module');

function parseArgs(argv) {
  const args = { root: path.resolve(__dirname, '..', '..'), deps: null, selfTest: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--root') args.root = path.resolve(argv[++i]);
    else if (a === '--deps') args.deps = path.resolve(argv[++i]);
    else if (a === '--self-test') args.selfTest = true;
    else throw new Error(`unknown argument ${a}`);
  }
  if (!args.deps) throw new Error('--deps DIR is required');
  return args;
}

const ARGS = parseArgs(process.argv.slice(2));
const depRequire = createRequire(path.join(ARGS.deps, 'package.json'));
const { Parser, fromFile } = depRequire('@asyncapi/parser');
const yaml = depRequire('js-yaml');

// The action catalogue: every RPC action, its service and whether clients may send it as a
// Socket.IO event. Generated from the `Action` enum (ACTION_ENUM) and kept equal to it by
// `cargo test -p ms-common --test schemas` (UPDATE_SCHEMAS=1 regenerates it). It lives in
// docs/, which the self-test copies whole.
const CATALOGUE = 'docs/actions.json';
const ACTION_ENUM = 'ms-common/src/contract/action.rs';

// The event catalogue: every event kind (routing key), the kinds each service's events queue
// is bound to and those the router fan-out queue is bound to. Generated from `EventKind`
// (`EventKind::ALL` in EVENT_KINDS, `consumed_by` and `LIVE_PUSHES` in contract/subscriptions.rs) and kept equal
// to it by `cargo test -p ms-common --test schemas` (UPDATE_SCHEMAS=1 regenerates it).
const EVENTS_CATALOGUE = 'docs/events.json';
const EVENT_KINDS = 'ms-common/src/events.rs';

// Files of the code this checker reads (relative to the root); the self-test copies them.
const SOURCES = {
  socket: 'ms-router/src/socket.rs',
  // The pushes (emit("…")); the fan-out bindings come from EVENTS_CATALOGUE.
  fanout: 'ms-router/src/fanout.rs',
  // The `Event` variants' serde renames, cross-checked against EVENTS_CATALOGUE, and the
  // `EventKind::X => "x.y"` routing keys the hold binding is named by.
  events: EVENT_KINDS,
  topology: 'ms-common/src/messaging/topology.rs',
  rpc: 'ms-common/src/messaging/rpc/mod.rs',
  consumer: 'ms-common/src/messaging/consumer.rs',
  publisher: 'ms-common/src/messaging/publisher.rs',
  auth: 'ms-common/src/auth.rs',
  error: 'ms-common/src/error.rs',
  // The hold queue's binding (ms-order only, so not in EVENTS_CATALOGUE).
  hold: 'ms-order/src/hold.rs',
  // Only for the exact messages (MESSAGES); the actions come from CATALOGUE.
  userService: 'ms-user/src/service.rs',
  stuffService: 'ms-stuff/src/service.rs',
  orderDomain: 'ms-order/src/domain.rs',
  paymentDomain: 'ms-payment/src/domain.rs',
};
const SERVICES = ['user', 'stuff', 'order', 'payment'];

// Exact client-facing messages (constant name in a source file) that both the AsyncAPI
// document and docs/contract.md must quote verbatim.
const MESSAGES = [
  ['orderDomain', 'HELD'],
  ['orderDomain', 'SOLD'],
  ['stuffService', 'RESERVED'],
  ['stuffService', 'STALE_VERSION'],
  ['stuffService', 'NOT_OWNER'],
  ['stuffService', 'NOT_FOUND'],
  ['paymentDomain', 'CANCELLED'],
  ['paymentDomain', 'DECLINED'],
  ['paymentDomain', 'ALREADY_PAID'],
  ['paymentDomain', 'NOT_YOUR_ORDER'],
  ['paymentDomain', 'ORDER_NOT_FOUND'],
  ['paymentDomain', 'COUPON_INVALID'],
  ['paymentDomain', 'COUPON_EXHAUSTED'],
  ['paymentDomain', 'COUPON_EXPIRED'],
  ['paymentDomain', 'PAYMENT_METHOD_REQUIRED'],
  ['paymentDomain', 'PERCENT_OFF_MESSAGE'],
  ['userService', 'INVALID_CREDENTIALS'],
  ['auth', 'NOT_AUTHORIZED'],
  ['error', 'INTERNAL_MESSAGE'],
];

// Broker names and arguments (literal, source file that must contain it) that the AsyncAPI
// document and docs/topology.md must both mention.
const TOPOLOGY_TERMS = [
  ['stuffmart.events', 'topology'],
  ['stuffmart.unrouted', 'topology'],
  ['stuffmart.dlx', 'topology'],
  ['alternate-exchange', 'topology'],
  ['x-max-length', 'topology'],
  ['x-message-ttl', 'topology'],
  ['x-dead-letter-exchange', 'topology'],
  ['x-dead-letter-routing-key', 'topology'],
  ['.retry.', 'topology'],
  ['.dlq', 'topology'],
  ['.events', 'topology'],
  ['rpc.', 'topology'],
  ['amq.rabbitmq.reply-to', 'rpc'],
  ['order.hold.', 'hold'],
  ['order.expired', 'hold'],
  ['x-retry-count', 'consumer'],
  ['x-death-reason', 'consumer'],
  ['x-original-routing-key', 'consumer'],
  ['x-correlation-id', 'publisher'],
];

// ------------------------------------------------------------------------ reading code

function read(root, rel) {
  return fs.readFileSync(path.join(root, rel), 'utf8');
}

/** The body of the first `{ … }` or `[ … ]` block after `start` (e.g. an enum's) in `text`. */
function blockAfter(text, start) {
  const i = text.indexOf(start);
  if (i < 0) return null;
  let j = i + start.length;
  while (j < text.length && text[j] !== '{' && text[j] !== '[') j++;
  const open = text[j];
  const close = open === '{' ? '}' : ']';
  let depth = 0;
  for (let k = j; k < text.length; k++) {
    if (text[k] === open) depth++;
    else if (text[k] === close && --depth === 0) return text.slice(j + 1, k);
  }
  return null;
}

/**
 * The action catalogue: `routes` (the relayed actions, as `{event, service}`) and
 * `actions[svc]` (every action of each service), with a problem per malformed entry.
 */
function readCatalogue(root, problems) {
  const routes = [];
  const actions = Object.fromEntries(SERVICES.map((svc) => [svc, []]));
  let list;
  try {
    list = JSON.parse(read(root, CATALOGUE));
  } catch (e) {
    problems.push(`${CATALOGUE}: cannot read it as JSON (${e.message}); regenerate it from ${ACTION_ENUM}`);
    return { routes, actions };
  }
  if (!Array.isArray(list)) {
    problems.push(`${CATALOGUE}: not a JSON array of actions`);
    return { routes, actions };
  }
  const seen = new Set();
  for (const [i, a] of list.entries()) {
    const ok =
      a &&
      typeof a.name === 'string' &&
      /^[a-z]+:[a-z]+(-[a-z]+)*$/.test(a.name) && // as RpcRequest.json's action pattern
      SERVICES.includes(a.service) &&
      typeof a.mutates === 'boolean' &&
      typeof a.relayed === 'boolean';
    if (!ok) {
      problems.push(`${CATALOGUE}: entry ${i} is not {name: "x:y" or "x:y-z", service: ${SERVICES.join('|')}, mutates: bool, relayed: bool}: ${JSON.stringify(a)}`);
      continue;
    }
    if (seen.has(a.name)) {
      problems.push(`${CATALOGUE}: action '${a.name}' is listed twice`);
      continue;
    }
    seen.add(a.name);
    actions[a.service].push(a.name);
    if (a.relayed) routes.push({ event: a.name, service: a.service });
  }
  for (const svc of SERVICES) {
    if (!actions[svc].length) problems.push(`${CATALOGUE}: no actions for service '${svc}'`);
  }
  if (!routes.length) problems.push(`${CATALOGUE}: no relayed actions (relayed: true)`);
  return { routes, actions };
}

/**
 * The event catalogue: `kinds` (every routing key), `consumers[svc]` (what each service's
 * events queue is bound to) and `routerPushes` (what the router fan-out queue is bound to),
 * with a problem per malformed part.
 */
function readEventCatalogue(root, problems) {
  const out = { kinds: [], consumers: {}, routerPushes: [] };
  const where = `${EVENTS_CATALOGUE}`;
  let cat;
  try {
    cat = JSON.parse(read(root, EVENTS_CATALOGUE));
  } catch (e) {
    problems.push(`${where}: cannot read it as JSON (${e.message}); regenerate it from EventKind in ${EVENT_KINDS}`);
    return out;
  }
  if (!cat || typeof cat !== 'object' || Array.isArray(cat)) {
    problems.push(`${where}: not a JSON object {kinds, consumers, routerPushes}`);
    return out;
  }
  const isKey = (k) => typeof k === 'string' && /^[a-z]+\.[a-z]+$/.test(k);
  /** A list of known kinds (or, for `kinds` itself, of routing keys), without duplicates. */
  const keyList = (value, what, known) => {
    if (!Array.isArray(value)) {
      problems.push(`${where}: ${what} is not a list of routing keys`);
      return [];
    }
    const seen = new Set();
    const list = [];
    for (const k of value) {
      if (!isKey(k)) problems.push(`${where}: ${what} has ${JSON.stringify(k)}, not a routing key like "x.y"`);
      else if (seen.has(k)) problems.push(`${where}: ${what} lists '${k}' twice`);
      else if (known && !known.includes(k)) problems.push(`${where}: ${what} lists '${k}', which is not in kinds`);
      else {
        seen.add(k);
        list.push(k);
      }
    }
    return list;
  };
  out.kinds = keyList(cat.kinds, 'kinds');
  if (!out.kinds.length) problems.push(`${where}: no event kinds`);
  const consumers = cat.consumers && typeof cat.consumers === 'object' && !Array.isArray(cat.consumers) ? cat.consumers : null;
  if (!consumers) problems.push(`${where}: consumers is not an object {service: [routing keys]}`);
  else {
    const d = sameSet(SERVICES, Object.keys(consumers));
    for (const s of d.missing) problems.push(`${where}: consumers has no entry for service '${s}'`);
    for (const s of d.extra) problems.push(`${where}: consumers has an entry for '${s}', which is not a service (${SERVICES.join(', ')})`);
    for (const svc of SERVICES) {
      if (svc in consumers) out.consumers[svc] = keyList(consumers[svc], `consumers.${svc}`, out.kinds);
    }
  }
  out.routerPushes = keyList(cat.routerPushes, 'routerPushes', out.kinds);
  if (!out.routerPushes.length) problems.push(`${where}: routerPushes is empty`);
  return out;
}

function constStr(text, name) {
  const m = text.match(new RegExp(`pub const ${name}: &str =\\s*"((?:[^"\\\\]|\\\\.)*)"`));
  return m ? m[1] : null;
}

/** Everything the checks need from the Rust sources. */
function readCode(root) {
  const src = Object.fromEntries(Object.entries(SOURCES).map(([k, rel]) => [k, read(root, rel)]));
  const problems = [];

  // The RPC actions: relayed ones are the client events the router routes to rpc.<service>.
  const { routes, actions } = readCatalogue(root, problems);
  // Events the router answers itself (`s.on("session:authenticate", …)`).
  const handlers = [...src.socket.matchAll(/\.on\(\s*"([^"]+)"/g)].map((m) => m[1]);
  if (!handlers.length) problems.push(`${SOURCES.socket}: cannot find any .on("…") handler`);
  const pushes = [...new Set([...src.fanout.matchAll(/\.emit\(\s*"([^"]+)"/g)].map((m) => m[1]))];
  if (!pushes.length) problems.push(`${SOURCES.fanout}: cannot find any emit("…")`);

  // The event kinds and who is bound to which: docs/events.json (from EventKind).
  const events = readEventCatalogue(root, problems);
  const eventKeys = events.kinds;
  const serviceBindings = events.consumers;
  const fanoutBindings = events.routerPushes;

  // Consistency: the wire types (`#[serde(rename = "…")]` on the `Event` variants) are the kinds.
  const enumBody = blockAfter(src.events, 'pub enum Event ');
  const wireTypes = enumBody
    ? [...enumBody.matchAll(/#\[serde\(rename = "([^"]+)"\)\]/g)].map((m) => m[1])
    : [];
  if (!wireTypes.length) problems.push(`${SOURCES.events}: cannot find the Event variants`);
  else if (eventKeys.length) {
    const d = sameSet(wireTypes, eventKeys);
    for (const k of d.missing) problems.push(`Event variant '${k}' (${SOURCES.events}) is not in ${EVENTS_CATALOGUE} kinds (EventKind)`);
    for (const k of d.extra) problems.push(`${EVENTS_CATALOGUE} kind '${k}' (EventKind) is not an Event variant in ${SOURCES.events}`);
  }

  // The hold queue (ms-order only): `EventKind::X.routing_key()` in its queue_bind, named
  // through the `EventKind::X => "x.y"` arms of EventKind::routing_key.
  const kindKeys = Object.fromEntries(
    [...src.events.matchAll(/EventKind::(\w+)\s*=>\s*"([^"]+)"/g)].map((m) => [m[1], m[2]]),
  );
  const holdBindings = [];
  const holdKinds = [...src.hold.matchAll(/EventKind::(\w+)\.routing_key\(\)/g)].map((m) => m[1]);
  if (!holdKinds.length) problems.push(`${SOURCES.hold}: cannot find the hold queue's binding (EventKind::….routing_key())`);
  for (const v of holdKinds) {
    const key = kindKeys[v];
    if (!key) problems.push(`${SOURCES.hold}: binds EventKind::${v}, which has no routing key in ${SOURCES.events}`);
    else if (!eventKeys.includes(key)) problems.push(`${SOURCES.hold}: binds '${key}' (EventKind::${v}), which is not in ${EVENTS_CATALOGUE} kinds`);
    else holdBindings.push(key);
  }

  const messages = [];
  for (const [file, name] of MESSAGES) {
    const value = constStr(src[file], name);
    if (value === null) problems.push(`${SOURCES[file]}: cannot find const ${name} (update MESSAGES in this checker)`);
    else messages.push({ file: SOURCES[file], name, value });
  }
  for (const [term, file] of TOPOLOGY_TERMS) {
    if (!src[file].includes(term)) {
      problems.push(`${SOURCES[file]}: no longer mentions '${term}' (update TOPOLOGY_TERMS in this checker)`);
    }
  }
  return {
    problems,
    routes,
    handlers,
    pushes,
    fanoutBindings,
    eventKeys,
    serviceBindings,
    holdBindings,
    actions,
    messages,
  };
}

// ---------------------------------------------------------------------- the document

/** `#/a/b/c` inside `doc`. */
function deref(doc, ref) {
  if (typeof ref !== 'string' || !ref.startsWith('#/')) return undefined;
  return ref
    .slice(2)
    .split('/')
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce((node, key) => (node == null ? undefined : node[key]), doc);
}

/** Follows `$ref`s inside the document until a non-reference node. */
function resolve(doc, node) {
  let n = node;
  for (let i = 0; i < 10 && n && typeof n.$ref === 'string' && n.$ref.startsWith('#/'); i++) {
    n = deref(doc, n.$ref);
  }
  return n;
}

function walk(node, visit, at = []) {
  visit(node, at);
  if (Array.isArray(node)) node.forEach((v, i) => walk(v, visit, [...at, i]));
  else if (node && typeof node === 'object') {
    for (const [k, v] of Object.entries(node)) walk(v, visit, [...at, k]);
  }
}

function allStrings(node) {
  const out = [];
  walk(node, (n) => {
    if (typeof n === 'string') out.push(n);
  });
  return out;
}

const norm = (s) => s.replace(/\s+/g, ' ');

function sameSet(a, b) {
  const A = new Set(a);
  const B = new Set(b);
  return {
    missing: [...A].filter((x) => !B.has(x)).sort(),
    extra: [...B].filter((x) => !A.has(x)).sort(),
  };
}

async function parseDocument(file) {
  const parser = new Parser();
  const { document, diagnostics } = await fromFile(parser, file).parse();
  const problems = [];
  const notes = [];
  for (const d of diagnostics) {
    const where = (d.path || []).join('.') || '(document)';
    const line = `${d.code}: ${d.message} at ${where}`;
    // 0 error, 1 warning: both fail. 2 info, 3 hint: shown only. The document stays on
    // AsyncAPI 3.0.0 on purpose, so the "latest version" notice is expected.
    if (d.severity <= 1) problems.push(`asyncapi parser: ${line}`);
    else if (d.code !== 'asyncapi-latest-version') notes.push(line);
  }
  if (!document && !problems.length) problems.push('asyncapi parser: no document produced');
  return { document, problems, notes };
}

/** Every check on one repository tree; returns a list of problems (empty = all good). */
async function check(root, log = () => {}) {
  const docsDir = path.join(root, 'docs');
  const file = path.join(docsDir, 'asyncapi.yaml');
  const problems = [];
  const code = readCode(root);
  problems.push(...code.problems);

  const parsed = await parseDocument(file);
  problems.push(...parsed.problems);
  for (const n of parsed.notes) log(`note: ${n}`);
  if (parsed.document) {
    log(
      `parser: valid AsyncAPI ${parsed.document.version()}, ${parsed.document.channels().length} channels, ` +
        `${parsed.document.operations().length} operations, ${parsed.document.messages().length} messages`,
    );
  }

  let doc;
  try {
    doc = yaml.load(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    problems.push(`docs/asyncapi.yaml: not YAML: ${e.message}`);
    return problems;
  }
  if (doc.asyncapi !== '3.0.0') problems.push(`docs/asyncapi.yaml: asyncapi is ${doc.asyncapi}, expected 3.0.0`);
  const channels = doc.channels || {};
  const operations = doc.operations || {};
  const refTo = (id) => `#/channels/${id}`;
  const opsOn = (id) => Object.entries(operations).filter(([, op]) => op.channel && op.channel.$ref === refTo(id));
  const onServer = (ch, server) => (ch.servers || []).some((s) => s.$ref === `#/servers/${server}`);
  const amqp = (ch) => (ch.bindings && ch.bindings.amqp) || {};
  const messagesOf = (ch) => Object.values(ch.messages || {}).map((m) => resolve(doc, m));
  const messageTypesOf = (ch) =>
    messagesOf(ch)
      .map((m) => m && m.bindings && m.bindings.amqp && m.bindings.amqp.messageType)
      .filter(Boolean);

  // --- Socket.IO: every routed event, handler and push is a channel on the router.
  const router = Object.fromEntries(
    Object.entries(channels)
      .filter(([, ch]) => onServer(ch, 'router'))
      .map(([id, ch]) => [ch.address, id]),
  );
  const clientEvents = [...new Set([...code.routes.map((r) => r.event), ...code.handlers])];
  const originOf = (event) =>
    code.handlers.includes(event) ? `handled in ${SOURCES.socket}` : `a relayed action in ${CATALOGUE}`;
  for (const event of clientEvents) {
    const id = router[event];
    if (!id) {
      problems.push(`Socket.IO event '${event}' (${originOf(event)}) has no channel on server 'router' in docs/asyncapi.yaml`);
      continue;
    }
    const ops = opsOn(id).filter(([, op]) => op.action === 'receive');
    if (!ops.length) problems.push(`Socket.IO event '${event}': no 'receive' operation on channel ${id}`);
    for (const [opId, op] of ops) {
      if (!op.reply) problems.push(`Socket.IO event '${event}': operation ${opId} has no reply (the ack)`);
    }
  }
  for (const push of code.pushes) {
    const id = router[push];
    if (!id) {
      problems.push(`push '${push}' (${SOURCES.fanout}) has no channel on server 'router' in docs/asyncapi.yaml`);
      continue;
    }
    if (!opsOn(id).some(([, op]) => op.action === 'send')) problems.push(`push '${push}': no 'send' operation on channel ${id}`);
  }
  for (const [address, id] of Object.entries(router)) {
    if (address !== '/' && !clientEvents.includes(address) && !code.pushes.includes(address)) {
      problems.push(
        `channel ${id} ('${address}') is not an event the router handles or pushes (stale? or not relayed in ${CATALOGUE})`,
      );
    }
  }

  // --- Events: one routing-key channel on stuffmart.events per event kind.
  const eventChannels = Object.fromEntries(
    Object.entries(channels)
      .filter(([, ch]) => amqp(ch).is === 'routingKey' && amqp(ch).exchange && amqp(ch).exchange.name === 'stuffmart.events')
      .map(([id, ch]) => [ch.address, [id, ch]]),
  );
  const ev = sameSet(code.eventKeys, Object.keys(eventChannels));
  for (const k of ev.missing) problems.push(`event '${k}' (${EVENTS_CATALOGUE} kinds) has no routing-key channel on stuffmart.events`);
  for (const k of ev.extra) problems.push(`routing-key channel '${k}' is not an event kind in ${EVENTS_CATALOGUE}`);
  for (const key of code.eventKeys) {
    if (!eventChannels[key]) continue;
    const [id, ch] = eventChannels[key];
    if (!opsOn(id).some(([, op]) => op.action === 'send')) problems.push(`event '${key}': no 'send' (publish) operation on channel ${id}`);
    const msgs = messagesOf(ch);
    if (msgs.length !== 1 || !msgs[0]) {
      problems.push(`event '${key}': channel ${id} must have exactly one message`);
      continue;
    }
    const m = msgs[0];
    const typeConst = m.payload && m.payload.allOf && m.payload.allOf[1] && m.payload.allOf[1].properties.type.const;
    if (m.bindings?.amqp?.messageType !== key) problems.push(`event '${key}': its message's amqp messageType is not '${key}'`);
    if (typeConst !== key) problems.push(`event '${key}': its payload does not pin type to '${key}' (allOf[1].properties.type.const)`);
  }

  // --- Queue bindings: each service's events queue, the router fan-out and the hold queue
  //     carry exactly the messages of the routing keys the code binds, and their descriptions
  //     name exactly those keys (no topic wildcards: the code binds each key explicitly).
  const queueChannel = (address) => Object.entries(channels).find(([, ch]) => ch.address === address);
  const isPattern = (t) => /^[a-z*#]+(\.[a-z*#]+)+$/.test(t) && /[*#]/.test(t);
  const describedKeys = (ch) =>
    [...String(ch.description || '').matchAll(/`([^`]+)`/g)]
      .map((m) => m[1])
      .filter((t) => code.eventKeys.includes(t) || isPattern(t));
  const compareBindings = (label, id, ch, bindings, from) => {
    const d = sameSet(bindings, messageTypesOf(ch));
    for (const k of d.missing) problems.push(`${label} is bound to '${k}' (${from}) but channel ${id} lacks that message`);
    for (const k of d.extra) problems.push(`${label}: channel ${id} lists '${k}', which is not bound (${from})`);
    const named = describedKeys(ch);
    for (const t of named.filter(isPattern)) {
      problems.push(`${label}: channel ${id}'s description says it is bound to '${t}', but the code binds each key explicitly (${from}): ${bindings.join(', ') || 'none'}`);
    }
    const n = sameSet(bindings, named.filter((t) => !isPattern(t)));
    for (const k of n.missing) problems.push(`${label}: channel ${id}'s description does not name its binding '${k}' (${from})`);
    for (const k of n.extra) problems.push(`${label}: channel ${id}'s description names '${k}', which is not bound (${from})`);
  };
  for (const svc of SERVICES) {
    const bindings = code.serviceBindings[svc];
    if (!bindings) continue;
    const found = queueChannel(`${svc}.events`);
    if (!found) {
      problems.push(`queue '${svc}.events' has no channel in docs/asyncapi.yaml`);
      continue;
    }
    compareBindings(`queue '${svc}.events'`, found[0], found[1], bindings, `${EVENTS_CATALOGUE} consumers.${svc}`);
    if (!opsOn(found[0]).some(([, op]) => op.action === 'receive')) problems.push(`queue '${svc}.events': no 'receive' operation`);
  }
  const fanout = Object.entries(channels).find(([, ch]) => ch.address === null && amqp(ch).is === 'queue');
  if (!fanout) problems.push('the router fan-out queue (address: null) has no channel');
  else compareBindings('router fan-out queue', fanout[0], fanout[1], code.fanoutBindings, `${EVENTS_CATALOGUE} routerPushes`);
  const hold = Object.entries(channels).find(([, ch]) => typeof ch.address === 'string' && ch.address.startsWith('order.hold.'));
  if (!hold) problems.push("the hold queue 'order.hold.<ms>ms' has no channel");
  else compareBindings('hold queue', hold[0], hold[1], code.holdBindings, SOURCES.hold);
  if (!queueChannel('order.expired')) problems.push("queue 'order.expired' has no channel");
  for (const address of ['{service}.dlq', '{queue}.retry.{delayMs}ms', 'stuffmart.unrouted', 'amq.rabbitmq.reply-to']) {
    if (!queueChannel(address)) problems.push(`'${address}' has no channel`);
  }

  // --- RPC: each service's queue lists exactly the actions of that service in the catalogue
  //     (what its handler matches on), and every relayed action is answered on the queue of
  //     its service: a request message there, and its Socket.IO operation says where it goes.
  const rpcListed = {};
  for (const svc of SERVICES) {
    const found = queueChannel(`rpc.${svc}`);
    if (!found) {
      problems.push(`RPC queue 'rpc.${svc}' has no channel`);
      continue;
    }
    const listed = messagesOf(found[1]).map((m) => m?.payload?.allOf?.[1]?.properties?.action?.const);
    rpcListed[svc] = listed;
    for (const [i, a] of listed.entries()) {
      if (typeof a !== 'string') problems.push(`rpc.${svc}: request message ${i} does not pin its action (allOf[1].properties.action.const)`);
    }
    const d = sameSet(code.actions[svc], listed.filter((a) => typeof a === 'string'));
    for (const a of d.missing) {
      problems.push(`rpc.${svc}: action '${a}' (of ms-${svc} in ${CATALOGUE}, from ${ACTION_ENUM}) has no request message`);
    }
    for (const a of d.extra) {
      problems.push(`rpc.${svc}: request message for '${a}', which is not an action of ms-${svc} in ${CATALOGUE} (${ACTION_ENUM})`);
    }
    const ops = opsOn(found[0]);
    if (!ops.some(([, op]) => op.reply && op.reply.channel)) problems.push(`rpc.${svc}: no operation with a reply (direct reply-to)`);
  }
  for (const { event, service } of code.routes) {
    const elsewhere = SERVICES.filter((s) => s !== service && (rpcListed[s] || []).includes(event));
    for (const s of elsewhere) {
      problems.push(`relayed action '${event}' goes to rpc.${service} (${CATALOGUE}) but rpc.${s} lists its request message`);
    }
    const id = router[event];
    if (!id) continue; // reported above
    for (const [opId, op] of opsOn(id).filter(([, o]) => o.action === 'receive')) {
      const said = [...`${op.summary || ''} ${op.description || ''}`.matchAll(/relayed to (rpc\.[a-z]+)/g)].map((m) => m[1]);
      if (!said.length) problems.push(`Socket.IO event '${event}': operation ${opId} does not say 'relayed to rpc.${service}'`);
      for (const q of said) {
        if (q !== `rpc.${service}`) {
          problems.push(`Socket.IO event '${event}': operation ${opId} says 'relayed to ${q}', but ${CATALOGUE} routes it to rpc.${service}`);
        }
      }
    }
  }

  // --- Operations: messages and reply messages belong to their channels; every channel is used.
  for (const [opId, op] of Object.entries(operations)) {
    const chId = op.channel?.$ref?.replace('#/channels/', '');
    for (const m of op.messages || []) {
      if (!m.$ref?.startsWith(`#/channels/${chId}/messages/`)) problems.push(`operation ${opId}: message ${m.$ref} is not from its channel ${chId}`);
    }
    if (op.reply) {
      const rId = op.reply.channel?.$ref?.replace('#/channels/', '');
      if (!rId || !channels[rId]) problems.push(`operation ${opId}: reply has no channel`);
      for (const m of op.reply.messages || []) {
        if (!m.$ref?.startsWith(`#/channels/${rId}/messages/`)) problems.push(`operation ${opId}: reply message ${m.$ref} is not from its reply channel ${rId}`);
      }
    }
  }
  for (const id of Object.keys(channels)) {
    const used = Object.values(operations).some(
      (op) => op.channel?.$ref === refTo(id) || op.reply?.channel?.$ref === refTo(id),
    );
    if (!used) problems.push(`channel ${id} is used by no operation`);
  }

  // --- Schemas: every generated file is referenced, and named on docs/contract.md.
  const schemaDir = path.join(docsDir, 'schemas');
  const schemaFiles = fs.existsSync(schemaDir) ? fs.readdirSync(schemaDir).filter((f) => f.endsWith('.json')).sort() : [];
  if (!schemaFiles.length) problems.push('docs/schemas/ has no schema files');
  const refs = new Set();
  walk(doc, (n) => {
    if (n && typeof n === 'object' && typeof n.$ref === 'string' && !n.$ref.startsWith('#')) refs.add(n.$ref);
  });
  const referenced = new Set([...refs].map((r) => path.basename(r.split('#')[0])));
  for (const f of schemaFiles) {
    if (!referenced.has(f)) problems.push(`docs/schemas/${f} is not referenced by docs/asyncapi.yaml`);
  }
  for (const r of refs) {
    const target = path.resolve(docsDir, r.split('#')[0]);
    if (!fs.existsSync(target)) problems.push(`docs/asyncapi.yaml references ${r}, which does not exist`);
  }

  // --- Human pages: exact messages, schema names and topology terms.
  const pages = {};
  for (const page of ['contract.md', 'topology.md']) {
    const p = path.join(docsDir, page);
    if (fs.existsSync(p)) pages[page] = fs.readFileSync(p, 'utf8');
    else problems.push(`docs/${page} is missing`);
  }
  const docText = norm(allStrings(doc).join(' \n '));
  const contractText = norm(pages['contract.md'] || '');
  const topologyText = norm(pages['topology.md'] || '');
  for (const { file: f, name, value } of code.messages) {
    if (!docText.includes(value)) problems.push(`docs/asyncapi.yaml does not quote ${name} (${f}) exactly: "${value}"`);
    if (pages['contract.md'] && !contractText.includes(value)) problems.push(`docs/contract.md does not quote ${name} (${f}) exactly: "${value}"`);
  }
  for (const f of schemaFiles) {
    if (pages['contract.md'] && !contractText.includes(`schemas/${f}`)) problems.push(`docs/contract.md does not point at schemas/${f}`);
  }
  const allEvents = [...clientEvents, ...code.pushes];
  for (const e of allEvents) {
    if (pages['contract.md'] && !contractText.includes(`\`${e}\``)) problems.push(`docs/contract.md does not mention \`${e}\``);
  }
  for (const [term] of TOPOLOGY_TERMS) {
    if (!docText.includes(term)) problems.push(`docs/asyncapi.yaml does not mention '${term}'`);
    if (pages['topology.md'] && !topologyText.includes(term)) problems.push(`docs/topology.md does not mention '${term}'`);
  }
  for (const key of code.eventKeys) {
    if (pages['topology.md'] && !topologyText.includes(key)) problems.push(`docs/topology.md does not mention event '${key}'`);
  }
  if (pages['topology.md'] && !/```mermaid/.test(pages['topology.md'])) problems.push('docs/topology.md has no Mermaid diagram');

  log(
    `code: ${Object.values(code.actions).flat().length} actions (${code.routes.length} relayed) + ` +
      `${code.handlers.length} handler(s), ${code.pushes.length} pushes, ` +
      `${code.eventKeys.length} event types, ${schemaFiles.length} schema files, ${code.messages.length} exact messages`,
  );
  return problems;
}

// ------------------------------------------------------------------------- self-test

function copyTree(root, dest) {
  fs.cpSync(path.join(root, 'docs'), path.join(dest, 'docs'), { recursive: true });
  for (const rel of Object.values(SOURCES)) {
    fs.mkdirSync(path.dirname(path.join(dest, rel)), { recursive: true });
    fs.copyFileSync(path.join(root, rel), path.join(dest, rel));
  }
}

function edit(dest, rel, from, to) {
  const p = path.join(dest, rel);
  const text = fs.readFileSync(p, 'utf8');
  if (!text.includes(from)) throw new Error(`self-test: '${from}' not found in ${rel}`);
  fs.writeFileSync(p, text.replace(from, to));
}

/** Changes the copy's action catalogue (a list of {name, service, mutates, relayed}). */
function editCatalogue(dest, change) {
  const p = path.join(dest, CATALOGUE);
  const list = JSON.parse(fs.readFileSync(p, 'utf8'));
  const out = change(list) || list;
  fs.writeFileSync(p, `${JSON.stringify(out, null, 2)}\n`);
}

/** The copy's catalogue entry for `name` (throws when it is gone, so the break is updated). */
function entry(list, name) {
  const a = list.find((x) => x.name === name);
  if (!a) throw new Error(`self-test: action '${name}' not found in ${CATALOGUE}`);
  return a;
}

/** Changes the copy's event catalogue ({kinds, consumers, routerPushes}). */
function editEvents(dest, change) {
  const p = path.join(dest, EVENTS_CATALOGUE);
  const cat = JSON.parse(fs.readFileSync(p, 'utf8'));
  change(cat);
  fs.writeFileSync(p, `${JSON.stringify(cat, null, 2)}\n`);
}

function editYaml(dest, change) {
  const p = path.join(dest, 'docs', 'asyncapi.yaml');
  const doc = yaml.load(fs.readFileSync(p, 'utf8'));
  change(doc);
  fs.writeFileSync(p, yaml.dump(doc, { lineWidth: -1, noRefs: true }));
}

const BREAKS = [
  {
    name: 'a new relayed action without a Socket.IO channel',
    expect: "Socket.IO event 'stuff:delete'",
    apply: (d) =>
      editCatalogue(d, (list) => {
        list.push({ name: 'stuff:delete', service: 'stuff', mutates: true, relayed: true });
      }),
  },
  {
    name: 'an action removed from the catalogue',
    expect: "request message for 'coupon:list'",
    apply: (d) =>
      editCatalogue(d, (list) => {
        const gone = entry(list, 'coupon:list');
        return list.filter((a) => a !== gone);
      }),
  },
  {
    name: 'an action no longer relayed',
    expect: "('stuff:get') is not an event the router",
    apply: (d) =>
      editCatalogue(d, (list) => {
        entry(list, 'stuff:get').relayed = false;
      }),
  },
  {
    name: 'an action moved to another service',
    expect: "rpc.order: action 'coupon:list'",
    apply: (d) =>
      editCatalogue(d, (list) => {
        entry(list, 'coupon:list').service = 'order';
      }),
  },
  {
    name: 'a Socket.IO operation naming the wrong RPC queue',
    expect: "says 'relayed to rpc.stuff'",
    apply: (d) =>
      editYaml(d, (doc) => {
        const op = doc.operations.orderGet;
        if (!op.summary.includes('relayed to rpc.order')) throw new Error('self-test: orderGet summary changed');
        op.summary = op.summary.replace('relayed to rpc.order', 'relayed to rpc.stuff');
      }),
  },
  {
    name: 'an unreadable action catalogue',
    expect: `${CATALOGUE}: cannot read it as JSON`,
    apply: (d) => fs.writeFileSync(path.join(d, CATALOGUE), '[{"name": "stuff:get",\n'),
  },
  {
    name: 'a new push without a channel',
    expect: "push 'stuff:deleted'",
    apply: (d) => edit(d, SOURCES.fanout, 'ns.emit("stuff:created"', 'ns.emit("stuff:deleted"'),
  },
  {
    name: 'a new event kind without a routing-key channel',
    expect: "event 'stuff.deleted' (docs/events.json kinds) has no routing-key channel",
    apply: (d) => {
      edit(d, SOURCES.events, '    #[serde(rename = "order.created")]', '    #[serde(rename = "stuff.deleted")]\n    StuffDeleted(StuffRecord),\n    #[serde(rename = "order.created")]');
      editEvents(d, (cat) => {
        cat.kinds.push('stuff.deleted');
      });
    },
  },
  {
    name: 'an Event variant missing from the event catalogue',
    expect: "Event variant 'stuff.deleted'",
    apply: (d) =>
      edit(d, SOURCES.events, '    #[serde(rename = "order.created")]', '    #[serde(rename = "stuff.deleted")]\n    StuffDeleted(StuffRecord),\n    #[serde(rename = "order.created")]'),
  },
  {
    name: 'an unreadable event catalogue',
    expect: `${EVENTS_CATALOGUE}: cannot read it as JSON`,
    apply: (d) => fs.writeFileSync(path.join(d, EVENTS_CATALOGUE), '{"kinds": ["user.created",\n'),
  },
  {
    name: 'a channel removed from the document',
    expect: "'coupon:list'",
    apply: (d) =>
      editYaml(d, (doc) => {
        delete doc.channels.couponList;
        delete doc.operations.couponList;
      }),
  },
  {
    name: 'a schema file nobody references',
    expect: 'docs/schemas/Extra.json is not referenced',
    apply: (d) => fs.writeFileSync(path.join(d, 'docs', 'schemas', 'Extra.json'), '{"type":"object"}\n'),
  },
  {
    name: 'a service binding the document does not show',
    expect: "queue 'payment.events' is bound to 'stuff.created'",
    apply: (d) =>
      editEvents(d, (cat) => {
        if (cat.consumers.payment.includes('stuff.created')) throw new Error('self-test: payment already consumes stuff.created');
        cat.consumers.payment.unshift('stuff.created');
      }),
  },
  {
    name: 'a router push binding the document does not show',
    expect: "router fan-out queue is bound to 'payment.failed'",
    apply: (d) =>
      editEvents(d, (cat) => {
        if (cat.routerPushes.includes('payment.failed')) throw new Error('self-test: the router already binds payment.failed');
        cat.routerPushes.push('payment.failed');
      }),
  },
  {
    name: 'a fan-out description with a wildcard binding',
    expect: "description says it is bound to 'order.*'",
    apply: (d) =>
      editYaml(d, (doc) => {
        const ch = doc.channels.routerFanoutQueue;
        if (!ch.description.includes('`order.created`')) throw new Error('self-test: routerFanoutQueue description changed');
        ch.description = ch.description.replace('`order.created`', '`order.*`');
      }),
  },
  {
    name: 'a hold queue bound to another event',
    expect: "hold queue is bound to 'order.cancelled'",
    apply: (d) => edit(d, SOURCES.hold, 'EventKind::OrderCreated.routing_key()', 'EventKind::OrderCancelled.routing_key()'),
  },
  {
    name: 'a changed 409 message',
    expect: 'HELD',
    apply: (d) => edit(d, SOURCES.orderDomain, 'please come back later', 'please try again later'),
  },
  {
    name: 'an RPC action the document does not list',
    expect: "rpc.stuff: action 'stuff:purge'",
    apply: (d) =>
      editCatalogue(d, (list) => {
        list.push({ name: 'stuff:purge', service: 'stuff', mutates: true, relayed: false });
      }),
  },
  {
    name: 'an invalid AMQP binding',
    expect: 'asyncapi parser',
    apply: (d) =>
      editYaml(d, (doc) => {
        doc.channels.stuffCreatedEvent.bindings.amqp.exchange.type = 'topics';
      }),
  },
  {
    name: 'a missing schema file',
    expect: 'Order.json',
    apply: (d) => fs.rmSync(path.join(d, 'docs', 'schemas', 'Order.json')),
  },
];

async function selfTest(root) {
  const failures = [];
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'asyncapi-selftest-'));
  try {
    const clean = path.join(base, 'clean');
    copyTree(root, clean);
    const baseline = await check(clean);
    if (baseline.length) failures.push(`unbroken copy fails:\n    ${baseline.join('\n    ')}`);
    for (const [i, b] of BREAKS.entries()) {
      const dest = path.join(base, `break-${i}`);
      copyTree(root, dest);
      try {
        b.apply(dest);
      } catch (e) {
        failures.push(`cannot apply break '${b.name}' (the code changed? update BREAKS): ${e.message}`);
        continue;
      }
      const problems = await check(dest);
      const hit = problems.find((p) => p.includes(b.expect));
      if (hit) console.log(`  noticed: ${b.name} -> ${hit}`);
      else failures.push(`not noticed: ${b.name} (expected a problem containing "${b.expect}"; got ${problems.length}: ${problems.slice(0, 3).join(' | ')})`);
    }
  } finally {
    fs.rmSync(base, { recursive: true, force: true });
  }
  return failures;
}

// ------------------------------------------------------------------------------ main

(async () => {
  const problems = await check(ARGS.root, (m) => console.log(`  ${m}`));
  if (problems.length) {
    for (const p of problems) console.log(`FAIL ${p}`);
    console.log(`check-asyncapi: ${problems.length} problem(s)`);
    process.exit(1);
  }
  console.log('check-asyncapi: docs/asyncapi.yaml is valid and consistent with the code');
  if (ARGS.selfTest) {
    const failures = await selfTest(ARGS.root);
    if (failures.length) {
      for (const f of failures) console.log(`FAIL self-test: ${f}`);
      process.exit(1);
    }
    console.log(`check-asyncapi: self-test passed (${BREAKS.length} deliberate breaks noticed)`);
  }
})().catch((e) => {
  console.error(`check-asyncapi: crashed: ${e && e.stack ? e.stack : e}`);
  process.exit(2);
});
