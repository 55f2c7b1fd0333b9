'use strict'
// Single-process micro-benchmarks of the JS side (run by bench/run.js, or
// `node bench/micro.js` alone; the emit() rows need a private network namespace):
// - JS⇄BSON conversion through the addon (binding.encodePayload / decodePayload,
//   the conversions emit() and event delivery do), with JSON as a yardstick;
// - emit() cost per call on a started instance vs dgram.send() of 64 bytes.
// Prints a table, or with --json one JSON line [{name, ns}].
const path = require('node:path')
const fs = require('node:fs')
const dgram = require('node:dgram')
const { performance } = require('node:perf_hooks')

const QUICK = process.argv.includes('--quick')
const JSON_OUT = process.argv.includes('--json')
const ROOT = path.resolve(__dirname, '..')
const binding = require(path.join(ROOT, 'binding.js'))
const Eventcast = require(ROOT)

/** ns per call of fn, best of 5 rounds of n calls (after a warm-up round). */
function timeIt (fn, n) {
  for (let i = 0; i < Math.min(n, 10000); i++) fn(i)
  let best = Infinity
  for (let r = 0; r < 5; r++) {
    const t = performance.now()
    for (let i = 0; i < n; i++) fn(i)
    best = Math.min(best, (performance.now() - t) * 1e6 / n)
  }
  return best
}

const N = QUICK ? 20000 : 100000
const small = ['x'.repeat(64), 1, 12345, 1.7e12]
const nested = [{ user: { id: 1234, name: 'alice', tags: ['a', 'b', 'c'] }, at: new Date(1700000000000), values: [1.5, 2.5, 3.5, 4.5] }]
const big = [Buffer.alloc(100 * 1024, 7)]
const out = []
const add = (name, ns) => out.push({ name, ns })

const smallBody = binding.encodePayload(small)
const nestedBody = binding.encodePayload(nested)
const bigBody = binding.encodePayload(big)
add('encodePayload small (64-char string + 3 numbers)', timeIt(() => binding.encodePayload(small), N))
add('decodePayload small', timeIt(() => binding.decodePayload(smallBody), N))
add('  yardstick: JSON.stringify small', timeIt(() => JSON.stringify(small), N))
add('  yardstick: JSON.parse small', (() => { const s = JSON.stringify(small); return timeIt(() => JSON.parse(s), N) })())
add('encodePayload nested object', timeIt(() => binding.encodePayload(nested), N))
add('decodePayload nested object', timeIt(() => binding.decodePayload(nestedBody), N))
add('encodePayload 100 KiB Buffer', timeIt(() => binding.encodePayload(big), Math.max(200, N / 50)))
add('decodePayload 100 KiB Buffer', timeIt(() => binding.decodePayload(bigBody), Math.max(200, N / 50)))

function inPrivateNetns () {
  try {
    const ifs = fs.readFileSync('/proc/self/net/dev', 'utf8').split('\n').slice(2).map((l) => l.split(':')[0].trim()).filter(Boolean)
    return ifs.length === 1 && ifs[0] === 'lo'
  } catch {
    return false
  }
}

async function emits () {
  if (!inPrivateNetns()) {
    process.stderr.write('micro: not in a private network namespace; skipping the emit() rows\n')
    return
  }
  const port = 40000 + Math.floor(Math.random() * 20000)
  const ec = Eventcast({ port })
  await ec.start()
  // Bursts of 1,000 with a pause, so the socket buffer never fills (no queueing cost).
  const burst = async (fn, total) => {
    let ns = 0
    for (let done = 0; done < total; done += 1000) {
      const t = performance.now()
      for (let i = 0; i < 1000; i++) fn(i)
      ns += (performance.now() - t) * 1e6
      await new Promise((resolve) => setTimeout(resolve, 2))
    }
    return ns / total
  }
  await burst(() => ec.emit('e', ...small), 5000)
  add('emit() small, started instance', await burst(() => ec.emit('e', ...small), N / 2))
  for (const [label, encrypt] of [['encrypt: {key}', { key: 'bench passphrase' }], ['encrypt: {key, legacy: true}', { key: 'bench passphrase', legacy: true }]]) {
    try {
      const ecEnc = Eventcast({ port: port + 1, encrypt })
      await ecEnc.start()
      await burst(() => ecEnc.emit('e', ...small), 5000)
      add(`emit() small, ${label}`, await burst(() => ecEnc.emit('e', ...small), N / 2))
      await ecEnc.stop()
    } catch (err) {
      process.stderr.write(`micro: ${label}: ${err.message}\n`)
    }
  }
  await ec.stop()
  const sock = dgram.createSocket({ type: 'udp4', reuseAddr: true })
  await new Promise((resolve) => sock.bind(0, resolve))
  const buf = Buffer.alloc(64, 120)
  // dgram.send() returns before sending (the write happens on a later tick): time each
  // burst until its last send callback, so the real sendto cost is counted.
  const burstDgram = async (total) => {
    let ns = 0
    for (let done = 0; done < total; done += 1000) {
      const t = performance.now()
      await new Promise((resolve) => {
        for (let i = 0; i < 999; i++) sock.send(buf, port, '224.0.0.1')
        sock.send(buf, port, '224.0.0.1', resolve)
      })
      ns += (performance.now() - t) * 1e6
      await new Promise((resolve) => setTimeout(resolve, 2))
    }
    return ns / total
  }
  await burstDgram(5000)
  add('  baseline: dgram.send() 64 B (until its callback)', await burstDgram(N / 2))
  sock.close()
}

emits().then(() => {
  if (JSON_OUT) {
    console.log(JSON.stringify(out))
  } else {
    for (const m of out) console.log(`${m.name.padEnd(50)} ${m.ns.toFixed(0).padStart(8)} ns  ${(1e9 / m.ns).toFixed(0).padStart(10)} /s`)
  }
}).catch((err) => {
  console.error(`micro: ${err.stack}`)
  process.exit(1)
})
