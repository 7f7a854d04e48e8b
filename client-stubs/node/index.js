// mcl-election: run code only while this process leads an mcl lock, and stop it in time.
//
//   const { runWhileLeader } = require('mcl-election');
//   await runWhileLeader({ name: 'my-lock' }, async (leadership) => {
//     while (!leadership.signal.aborted) { await doLeaderThings(leadership.token, leadership.signal); }
//   }, { signal });
//
// The leader function runs while this candidate leads; its `leadership.signal` aborts at LOST, at
// the end of the Campaign stream, and at the validity bound of the last LEADER minus
// `stopMarginMs` (default 100) when no renewal came, on process.hrtime.bigint() (CLOCK_MONOTONIC,
// the clock of the sidecar's bound). The library waits for the function's promise to settle
// before it calls it again on the next LEADER. See index.d.ts for the whole API.
'use strict';
const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const DEFAULT_ADDR = '127.0.0.1:7400';
const UNBOUNDED = (1n << 63n) - 1n;
const PERMANENT = new Set([grpc.status.INVALID_ARGUMENT, grpc.status.NOT_FOUND, grpc.status.PERMISSION_DENIED,
  grpc.status.UNIMPLEMENTED, grpc.status.UNAUTHENTICATED]);

let electionClientClass;
/** The generated-at-load-time client class of mcl.v1.Election (int64 as strings). */
function ElectionClient() {
  if (!electionClientClass) {
    const def = protoLoader.loadSync(path.join(__dirname, 'proto/mcl/v1/election.proto'), {
      keepCase: true, longs: String, enums: String, defaults: true,
    });
    electionClientClass = grpc.loadPackageDefinition(def).mcl.v1.Election;
  }
  return electionClientClass;
}

/** CLOCK_MONOTONIC in nanoseconds (libuv's uv_hrtime). */
function monotonicNs() {
  return process.hrtime.bigint();
}

class CampaignError extends Error {
  constructor(message, code) {
    super(message);
    this.name = 'CampaignError';
    this.code = code;
  }
}

class ClockError extends CampaignError {
  constructor(receivedNs, sentNs) {
    super(`a LEADER event was received at ${receivedNs} ns on this process's CLOCK_MONOTONIC, before the ` +
      `sidecar sent it (${sentNs} ns on its clock): the app and its sidecar do not share CLOCK_MONOTONIC ` +
      '(run them on the same node, outside separate time namespaces); not acting as leader');
    this.name = 'ClockError';
    this.receivedNs = receivedNs;
    this.sentNs = sentNs;
  }
}

class NoValidityError extends CampaignError {
  constructor() {
    super('the sidecar sent LEADER without a validity bound (it is older than this client library); upgrade ' +
      'the sidecar, or set allowMissingValidity to trust LEADER until LOST or the stream\'s end (unsafe if the ' +
      'sidecar freezes)');
    this.name = 'NoValidityError';
  }
}

/** Why leadership ended (Leadership.cause, the reason of leadership.signal). */
const Cause = Object.freeze({ LOST: 'lost', DEADLINE: 'deadline', STREAM_ENDED: 'stream ended', STOPPED: 'stopped' });

function toEvent(ev, receivedNs, extra) {
  const l = ev.leader || {};
  return {
    state: ev.state, leader: l.identity || '', cluster: l.cluster || '',
    fencingToken: BigInt(l.fencing_token || 0), reason: ev.reason || '', receivedNs,
    validUntilNs: ev.validity ? BigInt(ev.validity.valid_until_monotonic_ns) : undefined,
    renewal: false, local: false, ...extra,
  };
}

function localLost(token, reason) {
  return { state: 'LOST', leader: '', cluster: '', fencingToken: token, reason, receivedNs: monotonicNs(),
    validUntilNs: undefined, renewal: false, local: true };
}

class Campaign {
  constructor(options) {
    const o = { ...options };
    if (!o.name) throw new TypeError('mcl-election: options.name (the lock\'s name) is required');
    const lease = o.leaseDurationSeconds || 0;
    if (lease !== 0 && (lease < 2 || lease > 3600)) {
      throw new RangeError(`mcl-election: leaseDurationSeconds ${lease} is outside the sidecar's range [2, 3600]`);
    }
    this.options = {
      namespace: '', identity: '', leaseDurationSeconds: 0, stopMarginMs: 100, allowMissingValidity: false,
      minBackoffMs: 100, maxBackoffMs: 5000, onEvent: null,
      onLog: (m) => console.error(`mcl-election: ${this.describe()}: ${m}`), ...o,
    };
    this.options.stopMarginMs = Math.max(0, this.options.stopMarginMs);
    this.addr = o.addr || process.env.MCL_SIDECAR_ADDR || DEFAULT_ADDR;
    this.ownsClient = !o.client;
    const Client = ElectionClient();
    this.client = o.client || new Client(this.addr, grpc.credentials.createInsecure());
    this.token = 0n; // of the running term; 0n while not leading
    this.stopAtNs = 0n;
    this.validUntil = 0n;
    this.running = false;
  }

  describe() {
    return `${this.options.namespace || '(sidecar namespace)'}/${this.options.name}`;
  }

  /** The token of the grant this candidate leads under now, or undefined (consults the bound). */
  get fencingToken() {
    return this.token !== 0n && monotonicNs() < this.stopAtNs ? this.token : undefined;
  }

  /** Whether this candidate leads now (a LEADER on the current stream whose bound is ahead). */
  isLeader() {
    return this.fencingToken !== undefined;
  }

  /** The bound of the current leadership on CLOCK_MONOTONIC (ns), or undefined. */
  get validUntilNs() {
    return this.token !== 0n ? this.validUntil : undefined;
  }

  setLeading(token, validUntil) {
    this.token = token;
    this.validUntil = validUntil;
    this.stopAtNs = token === 0n ? 0n : this.stopAt(validUntil);
  }

  stopAt(validUntil) {
    return validUntil === UNBOUNDED ? UNBOUNDED : validUntil - BigInt(Math.round(this.options.stopMarginMs * 1e6));
  }

  close() {
    if (this.ownsClient) this.client.close();
  }

  /**
   * Campaigns until `signal` aborts (then resigns and resolves undefined), until fn settles on its
   * own while leading (resigns; resolves or rejects as fn did), or until a CampaignError.
   */
  async run(fn, { signal } = {}) {
    if (this.running) throw new Error('mcl-election: run() is already running on this Campaign');
    this.running = true;
    try {
      let backoff = this.options.minBackoffMs;
      let hadStream = false;
      while (!(signal && signal.aborted)) {
        const outcome = await new Stream(this, fn, signal, hadStream).run();
        this.setLeading(0n, 0n);
        hadStream = hadStream || outcome.gotEvent;
        if (outcome.final) {
          if (outcome.error) throw outcome.error;
          return outcome.result;
        }
        if (signal && signal.aborted) break;
        if (outcome.gotEvent) backoff = this.options.minBackoffMs;
        const wait = backoff / 2 + Math.random() * backoff / 2;
        backoff = Math.min(backoff * 2, this.options.maxBackoffMs);
        if (this.options.onLog) this.options.onLog(`campaign stream ended (${outcome.why}); reconnecting in ${Math.round(wait)} ms`);
        await sleep(wait, signal);
      }
      return undefined;
    } finally {
      this.running = false;
    }
  }
}

function sleep(ms, signal) {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      if (signal) signal.removeEventListener('abort', done);
      resolve();
    }
    if (signal) signal.addEventListener('abort', done, { once: true });
  });
}

/**
 * One Campaign stream. Every state change runs as a step on one promise chain, in order; the
 * term's lapse timer aborts the term's signal at once and then queues its step.
 */
class Stream {
  constructor(campaign, fn, signal, hadStream) {
    this.c = campaign;
    this.o = campaign.options;
    this.fn = fn;
    this.signal = signal;
    this.hadStream = hadStream;
    this.term = null;
    this.chain = Promise.resolve();
    this.gotEvent = false;
  }

  run() {
    return new Promise((resolve) => {
      this.finish = (outcome) => {
        if (this.finished) return;
        this.finished = true;
        if (this.signal) this.signal.removeEventListener('abort', onAbort);
        this.call.cancel(); // ends the stream: the sidecar resigns this candidacy
        resolve(outcome);
      };
      const onAbort = () => this.step(async () => {
        await this.stopTerm(Cause.STOPPED);
        this.finish({ gotEvent: this.gotEvent });
      });
      this.call = this.c.client.Campaign({
        lock: { namespace: this.o.namespace, name: this.o.name }, identity: this.o.identity,
        lease_duration_seconds: this.o.leaseDurationSeconds,
      });
      if (this.signal) this.signal.addEventListener('abort', onAbort, { once: true });
      this.call.on('data', (ev) => {
        const at = monotonicNs();
        this.step(() => this.handle(ev, at));
      });
      this.call.on('error', (err) => this.step(() => this.ended(err)));
      this.call.on('end', () => this.step(() => this.ended(null)));
    });
  }

  step(f) {
    this.chain = this.chain.then(() => (this.finished ? undefined : f())).catch((err) => {
      this.finish({ final: true, error: err, gotEvent: this.gotEvent });
    });
  }

  async ended(err) {
    const token = this.term ? this.term.token : 0n;
    await this.stopTerm(Cause.STREAM_ENDED);
    const why = err ? `${grpc.status[err.code] || err.code}: ${err.details || err.message}`
      : 'the sidecar ended the stream (the campaign was resigned)';
    if (token !== 0n) this.emit(localLost(token, `campaign stream ended: ${why}`));
    if (this.signal && this.signal.aborted) return this.finish({ gotEvent: this.gotEvent });
    if (err && (PERMANENT.has(err.code) || (err.code === grpc.status.ALREADY_EXISTS && !this.hadStream))) {
      return this.finish({ final: true, gotEvent: this.gotEvent,
        error: new CampaignError(`campaign for ${this.c.describe()}: ${grpc.status[err.code]}: ${err.details}`, err.code) });
    }
    return this.finish({ gotEvent: this.gotEvent, why });
  }

  async handle(ev, receivedNs) {
    this.gotEvent = true;
    if (ev.state !== 'LEADER') {
      await this.stopTerm(Cause.LOST);
      this.emit(toEvent(ev, receivedNs));
      return;
    }
    let validUntil = UNBOUNDED;
    if (ev.validity) {
      const sent = BigInt(ev.validity.sent_monotonic_ns);
      if (receivedNs < sent) {
        await this.stopTerm(Cause.LOST);
        throw new ClockError(receivedNs, sent);
      }
      validUntil = BigInt(ev.validity.valid_until_monotonic_ns);
    } else if (!this.o.allowMissingValidity) {
      await this.stopTerm(Cause.LOST);
      throw new NoValidityError();
    }
    const token = BigInt(ev.leader.fencing_token);
    const t = this.term;
    if (t) {
      if (t.token === token && this.rearm(t, validUntil)) {
        this.c.setLeading(token, validUntil);
        this.emit(toEvent(ev, receivedNs, { renewal: true }));
        return;
      }
      if (t.controller.signal.aborted) {
        await this.endLapsed();
      } else {
        await this.stopTerm(Cause.LOST);
        this.emit(localLost(t.token, 'a new grant arrived without LOST'));
      }
    }
    this.emit(toEvent(ev, receivedNs));
    this.start(token, validUntil);
  }

  start(token, validUntil) {
    const waitNs = this.c.stopAt(validUntil) - monotonicNs();
    if (waitNs <= 0n) {
      if (this.o.onLog) this.o.onLog(`LEADER (token ${token}) arrived after its bound; not leading until the next event`);
      return;
    }
    const controller = new AbortController();
    const term = { token, controller, timer: null, cause: undefined };
    const leadership = {
      token,
      signal: controller.signal,
      get cause() { return term.cause; },
      get validUntilNs() { return term.validUntil; },
      isLeader: () => !controller.signal.aborted && this.c.fencingToken === token,
    };
    term.validUntil = validUntil;
    this.term = term;
    this.c.setLeading(token, validUntil);
    this.arm(term, waitNs);
    term.settled = Promise.resolve().then(() => this.fn(leadership)).then(
      (value) => ({ value }), (error) => ({ error }));
    term.settled.then((r) => this.step(async () => {
      if (this.term !== term) return;
      if (!controller.signal.aborted) {
        // fn settled on its own while leading: resign, hand back its result.
        await this.stopTerm(Cause.STOPPED);
        this.finish({ final: true, result: r.value, error: r.error, gotEvent: true });
      } else {
        await this.endLapsed();
      }
    }));
  }

  arm(term, waitNs) {
    if (term.validUntil === UNBOUNDED) return;
    term.timer = setTimeout(() => {
      this.abort(term, Cause.DEADLINE);
      this.step(async () => { if (this.term === term) await this.endLapsed(); });
    }, Number(waitNs / 1000000n));
    // Whole milliseconds, rounded down, counted from libuv's cached loop time (which lags): both
    // make the timer fire early rather than late, and early is the safe side.
  }

  rearm(term, validUntil) {
    if (term.controller.signal.aborted) return false;
    if (term.timer === null) return validUntil === UNBOUNDED;
    if (validUntil === UNBOUNDED) return false;
    clearTimeout(term.timer);
    const waitNs = this.c.stopAt(validUntil) - monotonicNs();
    if (waitNs <= 0n) {
      this.abort(term, Cause.DEADLINE);
      return false;
    }
    term.validUntil = validUntil;
    this.arm(term, waitNs);
    return true;
  }

  abort(term, cause) {
    if (term.cause === undefined) term.cause = cause;
    term.controller.abort(Object.assign(new Error(`mcl-election: leadership ended: ${term.cause}`), { cause: term.cause }));
  }

  async stopTerm(cause) {
    this.c.setLeading(0n, 0n);
    const t = this.term;
    if (!t) return;
    this.term = null;
    if (t.timer !== null) clearTimeout(t.timer);
    this.abort(t, cause);
    await t.settled;
  }

  async endLapsed() {
    const token = this.term.token;
    await this.stopTerm(Cause.DEADLINE);
    this.emit(localLost(token, 'validity bound passed without a renewal'));
  }

  emit(event) {
    if (this.o.onEvent) this.o.onEvent(event);
  }
}

/** new Campaign(options).run(fn, { signal }), closing the campaign afterwards. */
async function runWhileLeader(options, fn, { signal } = {}) {
  const campaign = new Campaign(options);
  try {
    return await campaign.run(fn, { signal });
  } finally {
    campaign.close();
  }
}

module.exports = {
  Campaign, runWhileLeader, CampaignError, ClockError, NoValidityError, Cause, monotonicNs, ElectionClient,
  DEFAULT_ADDR,
};
