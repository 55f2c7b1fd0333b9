'use strict'
// A bench peer in its own Node process: sends or receives the bench events for
// one implementation, driven by bench/run.js through JSON lines (commands on
// stdin, answers on stdout; see bench/README.md, "Peer protocol").
//
//   node bench/peer.js --impl ours|dgram|natsjs|bare --role send|recv|idle --port P [--key K] [--nats URL]
//
// ours  — the public JS API, require('eventcast') (this repo): events
//         e(payload, trial, seq, sendTimeMs), 64-char string payloads.
// dgram — raw Node dgram, no framing: 64-byte datagrams whose first 16 bytes are
//         trial u32 LE, seq u32 LE, send time f64 LE (ms); bulk messages are
//         cut into 1024-byte chunks (eventcast's default maxPayloadSize).
// natsjs — the plain `nats` npm client (the NATS baseline): the dgram peer's
//         64-byte messages on subject bench.<port>; a bulk message is one NATS
//         message (no chunking: the bench server allows 8 MB payloads).
// bare  — nothing at all (only with --role idle: bare Node's RSS).
// --nats URL: `ours` over the NATS transport instead of multicast.
//
// Clock: each process calibrates `wallMs()` = Date.now()'s epoch plus the
// sub-millisecond monotonic performance.now(), by catching millisecond edges of
// Date.now() (the narrowest of 20); so sender and receiver timestamps share the
// system's real-time clock to a few microseconds (reported as clockUncertaintyMs).
// process.hrtime is not comparable across processes.
const path = require('node:path')
const dgram = require('node:dgram')
const readline = require('node:readline')
const { performance } = require('node:perf_hooks')
const { quantile } = require('./quantile.js')
const { ensurePrivateNetns } = require('./netns.js')

const GROUP = '224.0.0.1'
const HEADER = 16
const CHUNK = 1024
const SMALL = 'x'.repeat(64)

function arg (name, dflt) {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? process.argv[i + 1] : dflt
}
const impl = arg('impl', 'ours')
const role = arg('role', 'recv')
const port = Number(arg('port', '0'))
const key = arg('key')
const natsUrl = arg('nats')


function calibrate () {
  // Catch millisecond edges of Date.now(): the edge lies between the previous Date.now()
  // read (after `prevA`) and this one (before `b`). Keep the edge seen with the smallest
  // such window (a preempted read widens it), over 20 edges (~20 ms).
  let best = { width: Infinity, offset: 0 }
  for (let i = 0; i < 20; i++) {
    const start = Date.now()
    let prevA = performance.now()
    for (;;) {
      const a = performance.now()
      const d = Date.now()
      const b = performance.now()
      if (d !== start) {
        const width = b - prevA
        if (width < best.width) best = { width, offset: d - (prevA + b) / 2 }
        break
      }
      prevA = a
    }
  }
  return best
}
const calibration = calibrate()
const clockOffset = calibration.offset
const wallMs = () => clockOffset + performance.now()

const answer = (obj) => process.stdout.write(JSON.stringify(obj) + '\n')
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** Calls sendOne(i) for i < total at `rate` per second; yields to the event loop between bursts. */
function paced (rate, total, sendOne) {
  return new Promise((resolve) => {
    const start = performance.now()
    let sent = 0
    const tick = () => {
      const elapsed = performance.now() - start
      const due = Math.min(total, Math.floor(elapsed / 1000 * rate) + 1)
      // Cap a burst so stdin commands and socket writability are still served.
      const end = Math.min(due, sent + 20000)
      while (sent < end) sendOne(sent++)
      if (sent >= total) return resolve(performance.now() - start)
      const wait = (sent + 1) / rate * 1000 - (performance.now() - start)
      if (wait > 1.5) setTimeout(tick, wait - 1)
      else setImmediate(tick)
    }
    tick()
  })
}

// ---- receiver tally -----------------------------------------------------------
const tally = { trial: -1, count: 0, bytes: 0, first: 0, last: 0, lat: [], keepLat: true }
function reset (trial, keepLat) {
  tally.trial = trial
  tally.keepLat = keepLat
  tally.count = 0
  tally.bytes = 0
  tally.first = 0
  tally.last = 0
  tally.lat = []
}
function record (trial, bytes, ts) {
  if (trial !== tally.trial) return
  const now = wallMs()
  if (tally.count === 0) tally.first = now
  tally.count++
  tally.bytes += bytes
  tally.last = now
  if (tally.keepLat && bytes <= 128 && tally.lat.length < 4e6) tally.lat.push(now - ts)
}
/** The trial's tally; with `samples`, also every latency (ms, to the µs), for pooling across trials. */
function report (samples) {
  return {
    count: tally.count,
    bytes: tally.bytes,
    first: tally.first,
    last: tally.last,
    p50: quantile(tally.lat, 0.5),
    p99: quantile(tally.lat, 0.99),
    ...(samples ? { lat: tally.lat.map((x) => Math.round(x * 1000) / 1000) } : {})
  }
}

// ---- implementations ------------------------------------------------------------
async function makeOurs () {
  const Eventcast = require(path.join(__dirname, '..'))
  let scheme = 'plain'
  let ec
  const transport = natsUrl ? { transport: natsUrl } : {}
  if (key) {
    try {
      ec = Eventcast({ port, ...transport, encrypt: { key } })
      scheme = 'default'
    } catch (err) {
      // The authenticated default may not be in this build yet: measure the 0.1.x scheme.
      process.stderr.write(`peer(ours): encrypt: {key}: ${err.message}; using legacy: true\n`)
      ec = Eventcast({ port, encrypt: { key, legacy: true } })
      scheme = 'legacy'
    }
  } else {
    ec = Eventcast({ port, ...transport })
  }
  ec.on('error', (err) => process.stderr.write(`peer(ours): ${err.code || ''} ${err.message}\n`))
  if (role === 'recv') {
    ec.on('e', (payload, trial, seq, ts) => record(trial, payload.length, ts))
  }
  await ec.start()
  let errors = 0
  const send = (payload, trial, seq) => {
    try {
      ec.emit('e', payload, trial, seq, wallMs())
    } catch (err) {
      if (errors++ === 0) process.stderr.write(`peer(ours): emit: ${err.message}\n`)
    }
  }
  return {
    id: ec.id,
    scheme,
    sendSmall: (trial, seq) => send(SMALL, trial, seq),
    // Back to back: the same Buffer is emitted `count` times (it is encoded at emit).
    bulk: async (trial, count, size) => {
      const buf = Buffer.alloc(size, 120)
      for (let i = 0; i < count; i++) send(buf, trial, i)
      return count
    },
    errors: () => errors,
    stats: () => ec.stats(),
    close: () => ec.stop()
  }
}

function header (buf, trial, seq) {
  buf.writeUInt32LE(trial >>> 0, 0)
  buf.writeUInt32LE(seq >>> 0, 4)
  buf.writeDoubleLE(wallMs(), 8)
}

async function makeDgram () {
  const sock = dgram.createSocket({ type: 'udp4', reuseAddr: true, recvBufferSize: 8 << 20, sendBufferSize: 8 << 20 })
  let errors = 0
  sock.on('error', (err) => { if (errors++ === 0) process.stderr.write(`peer(dgram): ${err.message}\n`) })
  if (role === 'recv') {
    sock.on('message', (msg) => {
      if (msg.length < HEADER) return
      record(msg.readUInt32LE(0), msg.length - HEADER, msg.readDoubleLE(8))
    })
    await new Promise((resolve) => sock.bind(port, resolve))
    sock.addMembership(GROUP)
  } else {
    await new Promise((resolve) => sock.bind(0, resolve))
  }
  sock.setMulticastLoopback(true)
  sock.setMulticastTTL(1)
  const onSent = (err) => { if (err && errors++ === 0) process.stderr.write(`peer(dgram): send: ${err.message}\n`) }
  return {
    rcvbuf: sock.getRecvBufferSize(),
    sendSmall: (trial, seq) => {
      const buf = Buffer.allocUnsafe(64).fill(120, HEADER)
      header(buf, trial, seq)
      sock.send(buf, port, GROUP, onSent)
    },
    bulk: (trial, count, size) => new Promise((resolve) => {
      let seq = 0
      let last = null
      for (let m = 0; m < count; m++) {
        for (let off = 0; off < size; off += CHUNK) {
          const n = Math.min(CHUNK, size - off)
          const buf = Buffer.allocUnsafe(HEADER + n).fill(120, HEADER)
          header(buf, trial, seq++)
          last = buf
          sock.send(buf, port, GROUP, onSent)
        }
      }
      if (last === null) return resolve(0)
      // Sends complete in order: a zero-length marker to our own port resolves once all are out.
      sock.send(Buffer.alloc(0), sock.address().port, '127.0.0.1', () => resolve(seq))
    }),
    errors: () => errors,
    stats: () => ({}),
    close: () => new Promise((resolve) => sock.close(resolve))
  }
}

async function makeNatsJs () {
  const { connect } = require('nats')
  const nc = await connect({ servers: natsUrl, noEcho: true })
  const subject = `bench.${port}`
  let errors = 0
  if (role === 'recv') {
    nc.subscribe(subject, {
      callback: (err, msg) => {
        if (err || msg.data.length < HEADER) return
        const d = msg.data
        const view = Buffer.from(d.buffer, d.byteOffset, d.length)
        record(view.readUInt32LE(0), d.length - HEADER, view.readDoubleLE(8))
      }
    })
    await nc.flush()
  }
  const pub = (buf) => {
    try {
      nc.publish(subject, buf)
    } catch (err) {
      if (errors++ === 0) process.stderr.write(`peer(natsjs): ${err.message}\n`)
    }
  }
  return {
    sendSmall: (trial, seq) => {
      const buf = Buffer.allocUnsafe(64).fill(120, HEADER)
      header(buf, trial, seq)
      pub(buf)
    },
    bulk: async (trial, count, size) => {
      for (let i = 0; i < count; i++) {
        const buf = Buffer.allocUnsafe(HEADER + size).fill(120, HEADER)
        header(buf, trial, i)
        pub(buf)
      }
      await nc.flush()
      return count
    },
    errors: () => errors,
    stats: () => nc.stats(),
    close: () => nc.drain()
  }
}

// ---- command loop -----------------------------------------------------------------
async function main () {
  ensurePrivateNetns('peer')
  let peer = null
  if (role !== 'idle' || impl !== 'bare') {
    try {
      peer = impl === 'dgram' ? await makeDgram() : impl === 'natsjs' ? await makeNatsJs() : await makeOurs()
    } catch (err) {
      answer({ error: err.message, code: err.code })
      process.exit(1)
    }
  }
  answer({ ready: true, id: peer && peer.id, rcvbuf: peer && peer.rcvbuf, scheme: peer && peer.scheme, clockUncertaintyMs: calibration.width / 2 })
  const rl = readline.createInterface({ input: process.stdin })
  for await (const line of rl) {
    let cmd
    try {
      cmd = JSON.parse(line)
    } catch {
      continue
    }
    const id = cmd.id
    switch (cmd.cmd) {
      case 'rate': {
        const total = Math.floor(cmd.rate * cmd.dur)
        const t0 = wallMs()
        const before = peer.errors()
        // Not awaited: rss/report commands are answered while it runs.
        paced(cmd.rate, total, (i) => peer.sendSmall(cmd.trial, i)).then((elapsed) => {
          answer({ id, sent: total, elapsed, t0, errors: peer.errors() - before })
        })
        break
      }
      case 'bulk': {
        const t0 = wallMs()
        const sent = await peer.bulk(cmd.trial, cmd.count, cmd.size)
        answer({ id, sent, t0, t1: wallMs() })
        break
      }
      case 'reset':
        reset(cmd.trial, cmd.lat !== false) // lat: false keeps no latencies (soak: RSS is ours only)
        answer({ id, ok: true })
        break
      case 'report':
        answer({ id, ...report(cmd.samples === true), stats: peer ? peer.stats() : null })
        break
      case 'rss':
        answer({ id, rss: process.memoryUsage().rss })
        break
      case 'quit':
        if (peer) await peer.close()
        answer({ id, ok: true })
        rl.close()
        process.exit(0)
        break
      default:
        answer({ id, error: `unknown command ${cmd.cmd}` })
    }
  }
  if (peer) await peer.close()
}

main().catch((err) => {
  process.stderr.write(`peer: ${err.stack}\n`)
  process.exit(1)
})
