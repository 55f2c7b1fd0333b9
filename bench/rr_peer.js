'use strict'
// Request/reply round-trip peer in its own Node process, for
// `npm run bench -- --only rr`: the responder answers, the requester asks one
// request at a time and times each round trip with process.hrtime.bigint()
// around the awaited reply (both ends of a sample in one process: no clock
// calibration between processes). Driven by bench/run.js through JSON lines.
//
//   node bench/rr_peer.js --impl ours|dgram|natsjs --role responder|requester --port P [--nats URL]
//
// ours   — the public JS API: ec.handle('rr', (x) => x) / await ec.request('rr', seq);
//          loopback multicast on the group and P, or the NATS transport with --nats.
// dgram  — the Node baseline: two plain dgram sockets on 127.0.0.1 (unicast
//          ping-pong); the responder sends each datagram back to its source, the
//          requester (a connected socket) sends 16 bytes (seq f64 LE + padding) and awaits the datagram
//          carrying its seq, through a Promise as `ours` does.
// natsjs — the NATS baseline: the plain `nats` client, nc.request() on subject
//          rr.<P> to a nc.subscribe() responder that msg.respond()s the data.
//
// Requester commands: {"cmd":"wait"} asks until a first reply (up to 10 s) →
// {ok, ms}; {"cmd":"rr","count":N[,"samples":true]} → {n, errors, p50, p99[, lat]} (ms).
// Both: {"cmd":"rss"}, {"cmd":"quit"}.
const path = require('node:path')
const dgram = require('node:dgram')
const readline = require('node:readline')
const { quantile } = require('./quantile.js')
const { ensurePrivateNetns } = require('./netns.js')

const NAME = 'rr'
const TIMEOUT_MS = 1000 // per request: a lost request or reply counts as an error, not retried

function arg (name, dflt) {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? process.argv[i + 1] : dflt
}
const impl = arg('impl', 'ours')
const role = arg('role', 'responder')
const port = Number(arg('port', '0'))
const natsUrl = arg('nats')

const answer = (obj) => process.stdout.write(JSON.stringify(obj) + '\n')

// Each implementation: { ask(seq) → Promise<boolean> (requester), close() }.
async function makeOurs () {
  const Eventcast = require(path.join(__dirname, '..'))
  const ec = Eventcast({ port, requestTimeout: TIMEOUT_MS, ...(natsUrl ? { transport: natsUrl } : {}) })
  ec.on('error', (err) => process.stderr.write(`rr_peer(ours): ${err.code || ''} ${err.message}\n`))
  await ec.start()
  if (role === 'responder') ec.handle(NAME, (x) => x)
  return {
    ask: (seq) => ec.request(NAME, seq).then((v) => v === seq, () => false),
    close: () => ec.stop()
  }
}

async function makeDgram () {
  const sock = dgram.createSocket('udp4')
  sock.on('error', (err) => process.stderr.write(`rr_peer(dgram): ${err.message}\n`))
  if (role === 'responder') {
    sock.on('message', (msg, from) => sock.send(msg, from.port, from.address))
    await new Promise((resolve) => sock.bind(port, '127.0.0.1', resolve))
  } else {
    // Connected: send() then skips the address lookup, the tightest plain dgram path.
    await new Promise((resolve) => sock.bind(0, '127.0.0.1', resolve))
    await new Promise((resolve) => sock.connect(port, '127.0.0.1', resolve))
  }
  let waiting = null // { seq, resolve, timer } of the request in flight
  sock.on('message', (msg) => {
    if (role !== 'requester' || !waiting || msg.length < 8 || msg.readDoubleLE(0) !== waiting.seq) return
    const w = waiting
    waiting = null
    clearTimeout(w.timer)
    w.resolve(true)
  })
  const out = Buffer.alloc(16)
  return {
    ask: (seq) => new Promise((resolve) => {
      out.writeDoubleLE(seq, 0)
      waiting = { seq, resolve, timer: setTimeout(() => { waiting = null; resolve(false) }, TIMEOUT_MS) }
      sock.send(out)
    }),
    close: () => new Promise((resolve) => sock.close(resolve))
  }
}

async function makeNatsJs () {
  const { connect } = require('nats')
  const nc = await connect({ servers: natsUrl })
  const subject = `${NAME}.${port}`
  if (role === 'responder') {
    nc.subscribe(subject, { callback: (err, msg) => { if (!err) msg.respond(msg.data) } })
    await nc.flush()
  }
  const out = Buffer.alloc(16)
  return {
    ask: (seq) => {
      out.writeDoubleLE(seq, 0)
      return nc.request(subject, out, { timeout: TIMEOUT_MS }).then(
        (m) => m.data.length >= 8 && Buffer.from(m.data.buffer, m.data.byteOffset, m.data.length).readDoubleLE(0) === seq,
        () => false)
    },
    close: () => nc.drain()
  }
}

async function main () {
  ensurePrivateNetns('rr_peer')
  let peer
  try {
    peer = impl === 'dgram' ? await makeDgram() : impl === 'natsjs' ? await makeNatsJs() : await makeOurs()
  } catch (err) {
    answer({ error: err.message, code: err.code })
    process.exit(1)
  }
  answer({ ready: true })
  let seq = 0
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
      case 'wait': {
        // The responder's socket, membership or subscription may not be up yet.
        const t0 = performance.now()
        let ok = false
        while (!ok && performance.now() - t0 < 10000) ok = await peer.ask(++seq)
        answer({ id, ok, ms: performance.now() - t0 })
        break
      }
      case 'rr': {
        const lat = []
        let errors = 0
        for (let i = 0; i < cmd.count; i++) {
          const s = ++seq
          const t0 = process.hrtime.bigint()
          const ok = await peer.ask(s)
          const t1 = process.hrtime.bigint()
          if (ok) lat.push(Number(t1 - t0) / 1e6)
          else errors++
        }
        answer({
          id,
          n: lat.length,
          errors,
          p50: quantile(lat, 0.5),
          p99: quantile(lat, 0.99),
          ...(cmd.samples ? { lat: lat.map((x) => Math.round(x * 1e6) / 1e6) } : {})
        })
        break
      }
      case 'rss':
        answer({ id, rss: process.memoryUsage().rss })
        break
      case 'quit':
        await peer.close()
        answer({ id, ok: true })
        rl.close()
        process.exit(0)
        break
      default:
        answer({ id, error: `unknown command ${cmd.cmd}` })
    }
  }
  await peer.close()
}

main().catch((err) => {
  process.stderr.write(`rr_peer: ${err.stack}\n`)
  process.exit(1)
})
