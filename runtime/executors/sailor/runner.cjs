// The step runner for Node.js components written for elastic.io / the Open Integration Hub ("sailor" contract),
// so that they run unmodified:
//
//     node runner.cjs COMPONENT_FOLDER
//
// It speaks the same JSON lines as runtime/steps/runner.py (one request a line on stdin, one answer a line on
// stdout, in order), and calls the component the way elastic.io's sailor does: the function's `main` module
// exports `process(msg, cfg, snapshot)`, called with `this` an emitter:
//   this.emit('data', {body, ...})      an output message
//   this.emit('error', err)             the step failed
//   this.emit('snapshot', s)            replace the step's snapshot; 'updateSnapshot' merges into it
//   this.emit('rebound', err)           try the message again later
//   this.emit('httpReply', {statusCode, headers, body})   answer a synchronous webhook
//   this.emit('end')                    done (callback-style components)
// A returned promise ends the step when it settles; a value it resolves with is emitted as data.
// `verifyCredentials(credentials, cb)` (callback or promise) in verifyCredentials.js answers {"verify": ...}.
// {"model": {function, name, fields, credential}} answers a dynamic select's choices (see model()).
// {"ready": ["fn", ...]} (or true: all) loads those functions' modules and answers whether they load; activation
// asks before a flow goes live.
// The component's console output goes to stderr, never into the answers.
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const readline = require('node:readline');

const folder = path.resolve(process.argv[2] || '.');
// stdout belongs to the protocol: the runner keeps its own way to write there, and everything else that would
// go to stdout (console.*, process.stdout.write) goes to stderr.
const answerOut = process.stdout.write.bind(process.stdout);
const toStderr = (...args) => process.stderr.write(args.map(String).join(' ') + '\n');
process.stdout.write = process.stderr.write.bind(process.stderr);
console.log = console.info = console.debug = console.dir = console.table = toStderr;
let current = null; // the execution under way: an error thrown outside it (a timer, a stray promise) fails it
process.on('uncaughtException', (err) => { if (current) current(errorText(err)); else toStderr('uncaught:', errorText(err)); });
process.on('unhandledRejection', (err) => { if (current) current(errorText(err)); else toStderr('unhandled rejection:', errorText(err)); });

const descriptor = JSON.parse(fs.readFileSync(path.join(folder, 'component.json'), 'utf8'));
const functions = { ...(descriptor.triggers || {}), ...(descriptor.actions || {}) };
const loaded = new Map();

function load(functionId) {
  if (!loaded.has(functionId)) {
    const fn = functions[functionId];
    if (!fn || !fn.main) throw new Error(`no function ${JSON.stringify(functionId)} (it has: ${Object.keys(functions).sort().join(', ')})`);
    const mod = require(path.resolve(folder, fn.main));
    if (typeof mod.process !== 'function') throw new Error(`${fn.main} does not export process()`);
    loaded.set(functionId, mod);
  }
  return loaded.get(functionId);
}

function errorText(err) {
  if (err instanceof Error) return err.message || err.name;
  return typeof err === 'string' ? err : JSON.stringify(err);
}

function failure(id, error) {
  return { id, outputs: [], error, retryable: false, rebound_s: null, snapshot: null, reply: null, logs: [], delay_s: 0, ms: 0 };
}

async function execute(request) {
  const mod = load(String(request.function || ''));
  const ctx = request.context || {};
  const incoming = request.message || {};
  const msg = {
    id: ctx.message_id,
    body: incoming.data === undefined ? {} : incoming.data,
    attachments: incoming.attachments || {},
    headers: (incoming.metadata || {}).headers || {},
    metadata: incoming.metadata || {},
  };
  // elastic.io components read their credential's fields from cfg, beside the step's own fields.
  const cfg = { ...(ctx.credential || {}), ...(request.fields || {}) };
  const started = process.hrtime.bigint();
  const state = { outputs: [], error: null, retryable: true, rebound: null, snapshot: null, reply: null, logs: [] };
  let snapshot = ctx.snapshot || {};
  let finish;
  const ended = new Promise((resolve) => { finish = resolve; });
  current = (message) => { if (!state.error) state.error = message; finish(); };
  const log = (level) => (...args) => state.logs.push([level, args.map(String).join(' ')]);
  const emitter = {
    emit(event, payload) {
      switch (event) {
        case 'data':
          state.outputs.push({ data: payload && payload.body !== undefined ? payload.body : payload, metadata: {} });
          break;
        case 'error':
          state.error = errorText(payload);
          finish();
          break;
        case 'snapshot':
          snapshot = payload || {};
          state.snapshot = snapshot;
          break;
        case 'updateSnapshot':
          snapshot = { ...snapshot, ...(payload || {}) };
          state.snapshot = snapshot;
          break;
        case 'rebound':
          state.rebound = 30;
          state.error = `rebound: ${errorText(payload)}`;
          finish();
          break;
        case 'httpReply':
          state.reply = { status: (payload && payload.statusCode) || 200, headers: (payload && payload.headers) || {}, body: payload ? payload.body : null };
          break;
        case 'end':
          finish();
          break;
        default:
          state.logs.push(['warning', `unknown event ${JSON.stringify(event)}`]);
      }
      return emitter;
    },
    logger: { info: log('info'), warn: log('warning'), error: log('error'), debug: log('debug'), trace: log('debug') },
  };
  try {
    const returned = mod.process.call(emitter, msg, cfg, snapshot);
    if (returned && typeof returned.then === 'function') {
      // Whichever comes first ends it: the promise, an emitted 'end' or 'error', or an error thrown elsewhere.
      returned.then(
        (value) => { if (value !== undefined) emitter.emit('data', value); finish(); },
        (err) => { if (!state.error) state.error = errorText(err); finish(); },
      );
    } else if (returned !== undefined) {
      emitter.emit('data', returned); // a synchronous value is its output
      finish();
    }
    // A synchronous process() that returned nothing ends with emit('end') (or the step's time limit).
    await ended;
  } catch (err) {
    state.error = errorText(err);
  } finally {
    current = null;
  }
  return {
    id: request.id,
    outputs: state.error ? [] : state.outputs,
    error: state.error,
    retryable: state.retryable,
    rebound_s: state.rebound,
    snapshot: state.snapshot,
    reply: state.reply,
    logs: state.logs,
    delay_s: 0,
    ms: Number(process.hrtime.bigint() - started) / 1e6,
  };
}

async function verify(request) {
  const file = path.join(folder, 'verifyCredentials.js');
  if (!fs.existsSync(file)) return { id: request.id, ok: true, error: null };
  const check = require(file);
  const fn = typeof check === 'function' ? check : check.verify || check.verifyCredentials;
  try {
    const verdict = await new Promise((resolve, reject) => {
      const returned = fn.call({ logger: { info: toStderr, warn: toStderr, error: toStderr } }, request.verify || {},
        (err, data) => (err ? reject(err) : resolve(data)));
      if (returned && typeof returned.then === 'function') returned.then(resolve, reject);
    });
    const ok = !(verdict && verdict.verified === false);
    return { id: request.id, ok, error: ok ? null : 'the credentials were not accepted' };
  } catch (err) {
    return { id: request.id, ok: false, error: errorText(err) };
  }
}

// A dynamic select's choices: the model function is exported by the function's main module (elastic.io's
// convention), called with cfg (the credential's fields and the step's fields) and a callback, or returning a
// promise of {value: label}.
async function model(request) {
  const wanted = request.model || {};
  try {
    const mod = load(String(wanted.function || ''));
    const fn = mod[String(wanted.name || '')];
    if (typeof fn !== 'function') throw new Error(`the component has no model function ${JSON.stringify(wanted.name)}`);
    const cfg = { ...(wanted.credential || {}), ...(wanted.fields || {}) };
    const options = await new Promise((resolve, reject) => {
      const returned = fn.call({ logger: { info: toStderr, warn: toStderr, error: toStderr } }, cfg,
        (err, data) => (err ? reject(err) : resolve(data)));
      if (returned && typeof returned.then === 'function') returned.then(resolve, reject);
      // A value returned by a function that takes no callback is its answer; a callback-style one answers
      // through the callback, whatever it returns.
      else if (returned !== undefined && fn.length < 2) resolve(returned);
    });
    return { id: request.id, ok: true, options, error: null };
  } catch (err) {
    return { id: request.id, ok: false, options: null, error: errorText(err) };
  }
}

function ready(request) {
  try {
    (Array.isArray(request.ready) ? request.ready : Object.keys(functions)).forEach((id) => load(String(id)));
    return { id: request.id, ok: true, error: null };
  } catch (err) {
    return { id: request.id, ok: false, error: errorText(err) };
  }
}

async function main() {
  const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  for await (const line of lines) {
    if (!line.trim()) continue;
    let request;
    try {
      request = JSON.parse(line);
    } catch (err) {
      answerOut(JSON.stringify(failure(null, `the request is not JSON: ${err.message}`)) + '\n');
      continue;
    }
    let answer;
    try {
      if ('ready' in request) answer = ready(request);
      else if ('model' in request) answer = await model(request);
      else answer = 'verify' in request ? await verify(request) : await execute(request);
    } catch (err) {
      answer = failure(request.id, errorText(err));
    }
    process.stderr.write('\x1e\n'); // end of this request's console output (a container may reorder stdout and stderr)
    answerOut(safeLine(answer, request.id));
  }
  process.exit(0); // input ended: leftover timers and sockets must not keep the runner alive
}

function safeLine(answer, id) {
  try {
    return JSON.stringify(answer) + '\n';
  } catch (err) { // circular structures, BigInt: the step fails, the runner lives on
    return JSON.stringify(failure(id, `the step's output cannot be sent as JSON: ${errorText(err)}`)) + '\n';
  }
}

main();
