#!/usr/bin/env node
// Scenario runner for the openline e2e tests: drives the real botframework-directlinejs client under Node.
//
// Usage: node dl_client.js SCENARIO.json   (or the scenario JSON on stdin, or as the first argument itself)
//
// It makes Node look like a browser to DirectLineJS (global XMLHttpRequest from xhr2, global WebSocket from ws),
// then uses `new DirectLine({...})` as an app would: subscribes to connectionStatus$ and activity$, posts with
// postActivity(), and ends with end(). Everything that happens is printed on stdout as one JSON object a line:
//
//   {"event":"status","status":2,"name":"Online"}             connectionStatus$ emissions
//   {"event":"http","method":"POST","url":...,"status":200,"bearer":...,"responseToken":...}
//                                                             every REST call DLJS made (at XHR loadend); responseToken:
//                                                             the `token` of the answer (not for activities/upload);
//                                                             "aborted":true when DLJS cancelled the request;
//                                                             sentAt/endedAt (ms); retryAfter (429); count and
//                                                             responseWatermark (a poll's GET .../activities)
//   {"event":"ws","state":"open"|"close"|"error"|"keepalive","url":...}   DLJS's WebSockets; keepalive: an empty frame
//   {"event":"activity","activity":{...}}                     every activity emitted by activity$
//   {"event":"posted","id":...,"clientActivityID":...}        the id postActivity() emitted
//   {"event":"token","token":...}                             every change of dl.token after construction
//   {"event":"scheduler","delay":900000,"mappedTo":2000}      the token-refresh interval was shortened (once)
//   {"event":"step","index":0,"op":"wait"}                    a step started
//   {"event":"done","conversationId":...,"watermark":...,"token":...,"streamUrl":...}
//   {"event":"error","message":...}                           then exit 1 (a failed step) or 2 (a timeout)
//
// Scenario (JSON):
//   domain            "http://127.0.0.1:PORT/v3/directline" (required)
//   postDomain        another instance's ".../v3/directline": activities are posted there, the rest goes to domain
//   secret | token    the credential (secret wins, as in DLJS)
//   webSocket         true (default) or false for polling
//   pollingInterval   ms, polling mode only (DLJS: >= 200, else 1000)
//   timeout           DLJS's request timeout, also its delay before retrying a start (ms, DLJS's default 20000)
//   rxjsTimer         true: add Observable.timer to rxjs first, as an app importing rxjs/add/observable/timer does
//                     (DLJS needs it to wait a 429's Retry-After, and does not import it itself)
//   conversationId, watermark   resume an existing conversation (GET /conversations/{id}?watermark=)
//   userId            passed to dl.setUserId() before connecting
//   origin            the Origin header of every REST call and WebSocket handshake, as a browser page on that
//                     origin sends it (Node sends none by itself; xhr2 refuses it as browsers do, so this driver
//                     lifts that one restriction, and gives it to ws as its `origin` option)
//   refreshIntervalMs if set, DLJS's hard-coded 15-minute token refresh interval is run every this many ms instead:
//                     DLJS takes an injectable `scheduler` (its `services`); ours is RxJS's async scheduler whose
//                     actions turn exactly that one delay (15 * 60 * 1000) into refreshIntervalMs. Nothing else
//                     changes: DLJS's own refreshTokenLoop() / refreshToken() run and POST /tokens/refresh.
//   timeoutMs         bound of each step (default 20000)
//   totalTimeoutMs    bound of the whole run (default 50000)
//   steps             a list, run in order:
//     {"op":"wait","activities":[MATCH, ...],"settleMs":N}  until every MATCH (a partial activity: each given
//                       field equal, objects compared field by field) matches a received activity; then wait
//                       settleMs more so that late duplicates would show
//     {"op":"post","activity":{...}}   postActivity(); waits for its id ("retry" or an error fails the run)
//     {"op":"flood","activity":{...},"durationMs":N,"max":M,"gapMs":G}  postActivity() one after another (G ms
//                       apart) for N ms (text gets the post's index appended); failures do not end the run: each
//                       is a "postResult" event
//     {"op":"waitTokenRefresh","count":N}  until N POST /tokens/refresh answered 200 and dl.token holds the last
//     {"op":"sleep","ms":N}
//     {"op":"end"}                     dl.end() (also done after the last step if no step did it)

'use strict';

const fs = require('fs');
const NodeWebSocket = require('ws');
const XHR2 = require('xhr2');
const { AsyncAction } = require('rxjs/scheduler/AsyncAction');
const { AsyncScheduler } = require('rxjs/scheduler/AsyncScheduler');

const DLJS_REFRESH_INTERVAL = 15 * 60 * 1000; // directLine.js: intervalRefreshToken = lifetimeRefreshToken / 2
const STATUS_NAMES = ['Uninitialized', 'Connecting', 'Online', 'ExpiredToken', 'FailedToConnect', 'Ended'];

let finished = false;

function emit(event) {
  if (!finished) process.stdout.write(JSON.stringify(event) + '\n');
}

function finish(code, message) {
  if (finished) return;
  if (message !== undefined) {
    emit({ event: 'error', message });
    process.stderr.write(`dl_client: ${message}\n`);
  }
  finished = true;
  // stdout is a pipe or a file: flush, then exit even though sockets or timers are still open
  process.stdout.write('', () => process.exit(code));
}

class StepTimeout extends Error {}

function readScenario() {
  const arg = process.argv[2];
  let text;
  if (arg === undefined || arg === '-') text = fs.readFileSync(0, 'utf8');
  else if (arg.trim().startsWith('{')) text = arg;
  else text = fs.readFileSync(arg, 'utf8');
  return JSON.parse(text);
}

// --- the browser globals DLJS expects -------------------------------------------------------------------------

// scenario.postDomain: where activities are posted instead of `domain` (as a load balancer may send them)
let postDomain = null;

// POST /tokens/refresh answers ({status, token}), in order, for the waitTokenRefresh step
const refreshLog = [];

// scenario.origin: the page origin every request and handshake carries (null: none, as Node)
let pageOrigin = null;

class LoggingXMLHttpRequest extends XHR2 {
  constructor() {
    super();
    this.addEventListener('abort', () => {
      this._logAborted = true;
    });
    this.addEventListener('loadend', () => {
      const event = { event: 'http', method: this._logMethod, url: this._logUrl, status: this.status };
      event.bearer = this._logBearer;
      if (this._logAborted) event.aborted = true; // by DLJS itself, e.g. end() during a token refresh
      // the token a conversation or token call answered with (DLJS adopts it unless it uses a secret)
      if (!/\/activities(\?|$)|\/upload\?/.test(this._logUrl)) event.responseToken = this._body().token || null;
      event.sentAt = this._logSentAt;
      event.endedAt = Date.now();
      if (this.status === 429) event.retryAfter = this.getResponseHeader('Retry-After');
      if (this._logMethod === 'GET' && /\/activities\?/.test(this._logUrl) && this.status === 200) {
        event.count = (this._body().activities || []).length; // a poll: what it brought, and the watermark it gave
        event.responseWatermark = this._body().watermark;
      }
      emit(event);
    });
  }

  open(method, url, ...rest) {
    if (postDomain && method === 'POST' && /\/conversations\/[^/]+\/activities$/.test(url)) {
      url = postDomain + url.slice(url.indexOf('/conversations/')); // another instance behind the load balancer
    }
    this._logMethod = method;
    this._logUrl = url;
    if (/\/tokens\/refresh$/.test(url)) {
      this.addEventListener('load', () => refreshLog.push({ status: this.status, token: this._body().token || null }));
    }
    const opened = super.open(method, url, ...rest);
    if (pageOrigin) this.setRequestHeader('Origin', pageOrigin); // what the browser adds on every cross-origin call
    return opened;
  }

  // the response body as an object ({} when it is not JSON); RxJS asks for responseType 'json'
  _body() {
    let body = this.response;
    if (typeof body === 'string') {
      try {
        body = JSON.parse(body);
      } catch (e) {
        body = null;
      }
    }
    return body && typeof body === 'object' ? body : {};
  }

  send(...args) {
    this._logSentAt = Date.now();
    return super.send(...args);
  }

  setRequestHeader(name, value) {
    if (name.toLowerCase() === 'authorization') this._logBearer = String(value).replace(/^Bearer /, '');
    return super.setRequestHeader(name, value);
  }
}

// xhr2 refuses to set Origin, as a page's script may not: here the "browser" itself sets it
LoggingXMLHttpRequest.prototype._restrictedHeaders = { ...XHR2.prototype._restrictedHeaders, origin: false };

class LoggingWebSocket extends NodeWebSocket {
  constructor(url, protocols, options) {
    super(url, protocols, pageOrigin ? { ...(options || {}), origin: pageOrigin } : options);
    this.addEventListener('open', () => emit({ event: 'ws', state: 'open', url }));
    this.addEventListener('close', (e) => emit({ event: 'ws', state: 'close', url, code: e.code }));
    this.addEventListener('error', (e) => emit({ event: 'ws', state: 'error', url, message: String(e.message) }));
    this.addEventListener('message', (e) => {
      if (e.data === '') emit({ event: 'ws', state: 'keepalive', url }); // DLJS ignores these: `message.data && ...`
    });
  }
}

global.XMLHttpRequest = LoggingXMLHttpRequest;
global.WebSocket = LoggingWebSocket;

// required after the globals exist: DLJS looks for WebSocket when a DirectLine is constructed
const { DirectLine, ConnectionStatus } = require('botframework-directlinejs');

// --- the refresh-interval scheduler -----------------------------------------------------------------------------

function shortRefreshScheduler(refreshIntervalMs) {
  let reported = false;
  class ShortRefreshAction extends AsyncAction {
    requestAsyncId(scheduler, id, delay) {
      if (delay === DLJS_REFRESH_INTERVAL) {
        if (!reported) emit({ event: 'scheduler', delay, mappedTo: refreshIntervalMs });
        reported = true;
        delay = refreshIntervalMs;
      }
      return super.requestAsyncId(scheduler, id, delay);
    }
  }
  return new AsyncScheduler(ShortRefreshAction);
}

// --- helpers --------------------------------------------------------------------------------------------------

function matches(actual, expected) {
  if (expected === null || typeof expected !== 'object') return actual === expected;
  if (actual === null || typeof actual !== 'object') return false;
  if (Array.isArray(expected)) {
    return Array.isArray(actual) && actual.length === expected.length && expected.every((e, i) => matches(actual[i], e));
  }
  return Object.keys(expected).every((key) => matches(actual[key], expected[key]));
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function until(predicate, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new StepTimeout(`timed out after ${timeoutMs} ms waiting for ${what()}`);
    await sleep(20);
  }
}

// --- the run --------------------------------------------------------------------------------------------------

async function run(scenario) {
  const stepTimeout = scenario.timeoutMs || 20000;
  const options = { domain: scenario.domain };
  postDomain = scenario.postDomain || null;
  pageOrigin = scenario.origin || null;
  for (const key of ['secret', 'token', 'conversationId', 'watermark', 'pollingInterval', 'webSocket', 'timeout']) {
    if (scenario[key] !== undefined) options[key] = scenario[key];
  }
  if (scenario.refreshIntervalMs) options.scheduler = shortRefreshScheduler(scenario.refreshIntervalMs);

  // DLJS waits a 429's Retry-After with Observable.timer, which it never imports from rxjs 5 (as published, up
  // to 0.15.x): the wait throws a TypeError instead, unless the app's own code added it to the shared rxjs
  if (scenario.rxjsTimer) require('rxjs/add/observable/timer');

  const dl = new DirectLine(options);

  // log every change of dl.token (DLJS assigns it on connect, on reconnect and in its refresh loop)
  let token = dl.token;
  Object.defineProperty(dl, 'token', {
    configurable: true,
    enumerable: true,
    get: () => token,
    set: (value) => {
      if (value !== token) emit({ event: 'token', token: value });
      token = value;
    },
  });

  if (scenario.userId !== undefined) dl.setUserId(scenario.userId);

  const received = [];
  let streamError = null;
  const statusSub = dl.connectionStatus$.subscribe((status) =>
    emit({ event: 'status', status, name: STATUS_NAMES[status] || String(status) }),
  );
  const activitySub = dl.activity$.subscribe(
    (activity) => {
      received.push(activity);
      emit({ event: 'activity', activity });
    },
    (error) => {
      streamError = error;
      emit({ event: 'activityError', message: String((error && error.message) || error) });
    },
    () => emit({ event: 'activityComplete' }),
  );

  let ended = false;
  const end = () => {
    if (ended) return;
    ended = true;
    dl.end();
    activitySub.unsubscribe();
  };

  const steps = scenario.steps || [];
  for (let index = 0; index < steps.length; index++) {
    const step = steps[index];
    const timeoutMs = step.timeoutMs || stepTimeout;
    emit({ event: 'step', index, op: step.op });
    const failed = () => {
      const status = dl.connectionStatus$.getValue();
      if (status === ConnectionStatus.FailedToConnect) throw new Error('connection status FailedToConnect');
      if (streamError && !ended) throw new Error(`activity$ failed: ${(streamError && streamError.message) || streamError}`);
      return false;
    };
    switch (step.op) {
      case 'wait': {
        const wanted = step.activities || [];
        const missing = () => wanted.filter((m) => !received.some((a) => matches(a, m)));
        const what = () =>
          `activities ${JSON.stringify(missing())}; received ${received.length}: ` +
          JSON.stringify(received.map((a) => [a.id, a.type, a.text]));
        await until(() => failed() || missing().length === 0, timeoutMs, what);
        if (step.settleMs) await sleep(step.settleMs);
        break;
      }
      case 'post': {
        const activity = step.activity;
        const id = await new Promise((resolve, reject) => {
          const timer = setTimeout(() => reject(new StepTimeout(`postActivity gave no id within ${timeoutMs} ms`)), timeoutMs);
          dl.postActivity(activity).subscribe(
            (value) => {
              clearTimeout(timer);
              resolve(value);
            },
            (error) => {
              clearTimeout(timer);
              reject(new Error(`postActivity failed: status ${error && error.status} ${(error && error.message) || error}`));
            },
          );
        });
        const clientActivityID = activity.channelData && activity.channelData.clientActivityID;
        emit({ event: 'posted', id, clientActivityID });
        if (id === 'retry') throw new Error('postActivity emitted "retry" (DLJS: 403, 5xx or a network error)');
        break;
      }
      case 'flood': {
        // post one activity after another for durationMs (at most `max`), failures included: each result is
        // {"event":"postResult","index","status" (200, or the failed call's),"startedAt","endedAt","id"}
        const until = Date.now() + (step.durationMs || 1000);
        for (let n = 0; n < (step.max || 100) && Date.now() < until; n++) {
          const activity = { ...step.activity, text: `${step.activity.text || ''}${n}` };
          activity.channelData = { ...activity.channelData, clientActivityID: `${activity.text}-${Date.now()}` };
          const startedAt = Date.now();
          const result = await new Promise((resolve) => {
            const timer = setTimeout(() => resolve({ status: 'timeout' }), timeoutMs);
            dl.postActivity(activity).subscribe(
              (id) => {
                clearTimeout(timer);
                resolve({ status: id === 'retry' ? 'retry' : 200, id });
              },
              (error) => {
                clearTimeout(timer);
                resolve({ status: (error && error.status) || String(error) });
              },
            );
          });
          emit({ event: 'postResult', index: n, text: activity.text, startedAt, endedAt: Date.now(), ...result });
          if (result.status === 'timeout') throw new StepTimeout(`postActivity gave no answer within ${timeoutMs} ms`);
          if (step.gapMs) await sleep(step.gapMs);
        }
        break;
      }
      case 'waitTokenRefresh': {
        const count = step.count || 1;
        const refreshed = () => refreshLog.filter((r) => r.status === 200);
        const done = () => {
          const ok = refreshed();
          return ok.length >= count && token === ok[ok.length - 1].token;
        };
        const what = () => `${count} token refresh(es); POST /tokens/refresh answers so far: ${JSON.stringify(refreshLog)}`;
        await until(() => failed() || done(), timeoutMs, what);
        break;
      }
      case 'sleep':
        await sleep(step.ms || 0);
        break;
      case 'end':
        end();
        break;
      default:
        throw new Error(`unknown step op ${JSON.stringify(step.op)}`);
    }
  }
  end();
  statusSub.unsubscribe();
  emit({ event: 'done', conversationId: dl.conversationId, watermark: dl.watermark, token, streamUrl: dl.streamUrl });
}

function main() {
  let scenario;
  try {
    scenario = readScenario();
  } catch (e) {
    finish(1, `cannot read the scenario: ${e.message}`);
    return;
  }
  const total = scenario.totalTimeoutMs || 50000;
  setTimeout(() => finish(2, `the whole run took longer than ${total} ms`), total);
  run(scenario).then(
    () => finish(0),
    (e) => finish(e instanceof StepTimeout ? 2 : 1, e.message || String(e)),
  );
}

main();
