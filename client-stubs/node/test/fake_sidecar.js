// A fake sidecar for the unit tests: a real gRPC server on 127.0.0.1 whose Campaign streams the
// test scripts event by event (LEADER with a validity bound, renewals, LOST, a broken stream).
'use strict';
const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const { monotonicNs } = require('..');

const def = protoLoader.loadSync(path.join(__dirname, '../proto/mcl/v1/election.proto'), {
  keepCase: true, longs: String, enums: String, defaults: true,
});
const { Election } = grpc.loadPackageDefinition(def).mcl.v1;

class FakeStream {
  constructor(call) {
    this.call = call;
    this.request = call.request;
    this.closed = new Promise((resolve) => call.on('cancelled', resolve));
  }

  /** LEADER for token, valid for validMs from now (or sent at sentNs); returns the bound. */
  leader(token, validMs, sentNs) {
    const now = sentNs === undefined ? monotonicNs() : sentNs;
    const until = now + BigInt(Math.round(validMs * 1e6));
    this.call.write({
      state: 'LEADER', leader: { identity: 'me', cluster: 'c0', fencing_token: String(token) },
      validity: { valid_until_monotonic_ns: String(until), sent_monotonic_ns: String(now) },
    });
    return until;
  }

  unboundedLeader(token) {
    this.call.write({ state: 'LEADER', leader: { fencing_token: String(token) } });
  }

  state(state, token = 0) {
    this.call.write({ state, leader: { identity: 'other', fencing_token: String(token) } });
  }

  breakIt() {
    this.call.emit('error', { code: grpc.status.UNAVAILABLE, details: 'sidecar restarting' });
  }
}

class FakeSidecar {
  async start() {
    this.streams = [];
    this.waiters = [];
    this.refuse = [];
    this.server = new grpc.Server();
    this.server.addService(Election.service, {
      Campaign: (call) => {
        const refusal = this.refuse.shift();
        if (refusal) {
          call.emit('error', refusal);
          return;
        }
        const s = new FakeStream(call);
        const w = this.waiters.shift();
        if (w) w(s); else this.streams.push(s);
      },
    });
    const port = await new Promise((resolve, reject) => this.server.bindAsync('127.0.0.1:0',
      grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
    this.addr = `127.0.0.1:${port}`;
    return this;
  }

  /** The next Campaign stream opened by the client. */
  next(timeoutMs = 5000) {
    const s = this.streams.shift();
    if (s) return Promise.resolve(s);
    return withTimeout(new Promise((resolve) => this.waiters.push(resolve)), timeoutMs, 'no Campaign stream opened');
  }

  stop() {
    this.server.forceShutdown();
  }
}

function withTimeout(promise, ms, what) {
  let t;
  return Promise.race([promise, new Promise((_, reject) => {
    t = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  })]).finally(() => clearTimeout(t));
}

module.exports = { FakeSidecar, withTimeout };
