'use strict'
// Shared by the lab's sender, receiver and runner: deterministic 1 MiB
// payloads and the per-receiver tally of what arrived.
const crypto = require('node:crypto')

/** Deterministic content of big message `i` of sender `label` (xorshift32 stream). */
function bigPayload (label, i, size) {
  const buf = Buffer.allocUnsafe(size)
  let x = (Number.parseInt(crypto.createHash('sha256').update(`${label}:${i}`).digest('hex').slice(0, 8), 16) | 1) >>> 0
  const words = size >>> 2
  for (let w = 0; w < words; w++) {
    x ^= x << 13; x >>>= 0
    x ^= x >>> 17
    x ^= x << 5; x >>>= 0
    buf.writeUInt32LE(x, w * 4)
  }
  for (let b = words * 4; b < size; b++) buf[b] = b & 0xff
  return buf
}

const digestCache = new Map()
/** sha256 of the expected big payload (memoised: several receivers check the same ones). */
function expectedDigest (label, i, size) {
  const key = `${label}:${i}:${size}`
  let d = digestCache.get(key)
  if (!d) {
    d = crypto.createHash('sha256').update(bigPayload(label, i, size)).digest('hex')
    digestCache.set(key, d)
  }
  return d
}

/**
 * What one receiver got. Events are `lab(tag, senderLabel, i[, buffer])`.
 * `expect` maps sender label → number of events that sender sends, or
 * `{n, size}` for a label whose events carry buffers of their own size (a
 * sender mixing small events and big ones sends the big ones under a label of
 * their own, see sender.js `--big`).
 */
class Tally {
  constructor ({ tag, expect, size = 0 }) {
    this.tag = tag
    this.size = size
    this.t0 = Date.now()
    this.lastAt = 0
    this.foreign = 0 // events with another tag or an unknown sender (must stay 0)
    this.gaps = 0 // sum of 'gap' counts reported
    this.gapEvents = 0
    this.senders = {}
    for (const [label, e] of Object.entries(expect)) {
      const { n, size: own } = typeof e === 'object' ? e : { n: e, size }
      // first: lowest index received; arrived: index of the first event to arrive (the join point of a late joiner)
      this.senders[label] = { n, size: own, seen: new Uint8Array(n), unique: 0, dupes: 0, bad: 0, first: -1, arrived: -1 }
    }
  }

  /** Records one event; `body` is the big payload (Buffer) or undefined. */
  add (tag, label, i, body) {
    const s = this.senders[label]
    if (tag !== this.tag || !s || !Number.isInteger(i) || i < 0 || i >= s.n) {
      this.foreign++
      return
    }
    this.lastAt = Date.now()
    if (s.size) {
      const ok = Buffer.isBuffer(body) && body.length === s.size &&
        crypto.createHash('sha256').update(body).digest('hex') === expectedDigest(label, i, s.size)
      if (!ok) {
        s.bad++
        return
      }
    }
    if (s.seen[i]++) {
      s.dupes++
      return
    }
    if (s.first < 0 || i < s.first) s.first = i
    if (s.arrived < 0) s.arrived = i
    s.unique++
  }

  gap (count) {
    this.gapEvents++
    this.gaps += Number(count) || 0
  }

  /** Plain summary (what the receiver prints and the runner judges). */
  summary () {
    const senders = {}
    let unique = 0; let dupes = 0; let bad = 0; let expected = 0; let sinceJoin = 0
    for (const [label, s] of Object.entries(this.senders)) {
      // Missing since the first event to arrive from that sender (= all of them for a receiver that was
      // there first). A late joiner may also get a few older events (repairs others asked for): extras.
      const from = s.arrived < 0 ? s.n : s.arrived
      let holes = 0
      let extras = 0
      for (let i = 0; i < s.n; i++) {
        if (i >= from && !s.seen[i]) holes++
        if (i < from && s.seen[i]) extras++
      }
      senders[label] = { n: s.n, unique: s.unique, dupes: s.dupes, bad: s.bad, first: s.first, arrived: s.arrived, holesSinceJoin: holes, olderExtras: extras }
      unique += s.unique; dupes += s.dupes; bad += s.bad; expected += s.n; sinceJoin += s.n - from + extras
    }
    return {
      expected,
      unique,
      dupes,
      bad,
      missing: expected - unique,
      sinceJoinExpected: sinceJoin,
      foreign: this.foreign,
      gaps: this.gaps,
      gapEvents: this.gapEvents,
      lastMs: this.lastAt ? this.lastAt - this.t0 : null,
      senders
    }
  }
}

/** Parses `--key value` pairs (and bare `--flag`) into an object. */
function parseArgs (argv) {
  const out = {}
  for (let k = 0; k < argv.length; k++) {
    const a = argv[k]
    if (!a.startsWith('--')) continue
    const next = argv[k + 1]
    if (next === undefined || next.startsWith('--')) out[a.slice(2)] = true
    else { out[a.slice(2)] = next; k++ }
  }
  return out
}

module.exports = { bigPayload, expectedDigest, Tally, parseArgs }
