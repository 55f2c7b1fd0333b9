#!/usr/bin/env node
'use strict'
// `npm run bench`: eventcast against raw baselines, each side in its own process,
// over loopback multicast inside a private network namespace. Prints a table of
// every figure with min/median/max over repeats and the ratio
// ours/baseline. Never fails on a number; it reports.
//
//   npm run bench [-- --quick] [-- --repeats N] [-- --soak SECONDS] [-- --only a,b] [-- --rr-pin split|same|off]
//   env: BENCH_SOAK_SECONDS (default 30; 300 for the issue's 5-minute soak),
//        BENCH_REPEATS, BENCH_QUICK=1, BENCH_JSON=path (raw results as JSON).
// Scenarios (--only): rate, latency, mib, bulk, enc, rustapi, memory, soak, micro, nats, rr.
const { spawn, spawnSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const readline = require('node:readline')
const { quantile } = require('./quantile.js')

const ROOT = path.resolve(__dirname, '..')
const argv = process.argv.slice(2)
const flag = (name) => argv.includes(`--${name}`)
const opt = (name, dflt) => {
  const i = argv.indexOf(`--${name}`)
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1] : dflt
}

// ---- private network namespace --------------------------------------------------
function interfaces () {
  return fs.readFileSync('/proc/self/net/dev', 'utf8').split('\n').slice(2)
    .map((l) => l.split(':')[0].trim()).filter(Boolean)
}
function inPrivateNetns () {
  const ifs = interfaces()
  return ifs.length === 1 && ifs[0] === 'lo'
}
if (!inPrivateNetns()) {
  // This machine's default route may lead to a real LAN: never multicast outside a
  // namespace of our own, where the only interface is loopback.
  const setup = 'ip link set lo up && ip route add 224.0.0.0/4 dev lo'
  const r = spawnSync('unshare', ['-n', 'sh', '-c', `${setup} && exec "$@"`, 'sh', process.execPath, __filename, ...argv], { stdio: 'inherit' })
  if (r.error) {
    console.error(`bench: cannot enter a private network namespace (${r.error.message}); needs root and util-linux unshare`)
    process.exit(1)
  }
  process.exit(r.status === null ? 1 : r.status)
}
// Loopback must be up and the multicast range routed to it (also when started in a bare netns).
spawnSync('sh', ['-c', 'ip link set lo up; ip route add 224.0.0.0/4 dev lo 2>/dev/null'], { stdio: 'ignore' })

// ---- settings ----------------------------------------------------------------------
const QUICK = flag('quick') || process.env.BENCH_QUICK === '1'
const REPEATS = Number(opt('repeats', process.env.BENCH_REPEATS || (QUICK ? 1 : 3)))
const SOAK = Number(opt('soak', process.env.BENCH_SOAK_SECONDS || (QUICK ? 8 : 30)))
const ALL = ['rate', 'latency', 'mib', 'bulk', 'enc', 'rustapi', 'memory', 'soak', 'micro', 'nats', 'rr']
const ONLY = new Set((opt('only', '') || ALL.join(',')).split(',').filter(Boolean))
const S = {
  trialDur: QUICK ? 0.5 : 1.0, // seconds per rate trial
  startRate: 4000,
  maxRate: 2_000_000,
  bisect: QUICK ? 2 : 3,
  latencyDur: QUICK ? 1 : 5, // p99 of 5,000 samples: 2,000 swung 0.3–2.4× between repeats on a 2-core VM
  natsLatencyWindows: QUICK ? 2 : 10, // one-second windows per pair, in turns (see latencyInTurns)
  rrWarmup: QUICK ? 200 : 500, // request/reply round trips per pair before the measured windows
  rrWindows: QUICK ? 4 : 10, // windows per pair, in turns (see scenarioRr)
  rrPerWindow: QUICK ? 250 : 1000, // sequential round trips per window
  mibCount: QUICK ? 3 : 5,
  bulkCount: QUICK ? 100 : 200,
  bulkSize: 100 * 1024,
  lossLimit: 0.001
}
const KEY = 'bench passphrase'
// Where the request/reply pairs run: `split` (responder on CPU 1, requester on
// CPU 0), `same` (both on CPU 0) or `off` (the scheduler's choice). Pinned
// because the placement decides the round trip, and it is a draw per process
// pair that taking pairs in turns cannot even out: on the idle 2-vCPU VM, the
// same JS pair measured 0.031 ms on one CPU and 0.084 ms on two (waking an
// idle vCPU), and unpinned runs flipped between the two from pair to pair.
const RR_PIN = opt('rr-pin', 'split')

// ---- build ------------------------------------------------------------------------------
const EXAMPLES = path.join(ROOT, 'target', 'release', 'examples')
function build () {
  if (!flag('no-build')) {
    console.log('bench: building the Rust peers (cargo build --release --examples) ...')
    const r = spawnSync('cargo', ['build', '--release', '--example', 'bench_udp_baseline', '--example', 'bench_rust_peer', '--example', 'bench_rr_peer'], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] })
    if (r.status !== 0) console.error('bench: cargo build failed; Rust rows will be missing')
  }
  const { addonPath } = require(path.join(ROOT, 'scripts', 'addon.js'))
  let addon = addonPath()
  if (!addon || flag('build-addon')) {
    console.log('bench: building the addon (release) ...')
    spawnSync(process.execPath, [path.join(ROOT, 'scripts', 'install.js')], { cwd: ROOT, stdio: 'inherit', env: { ...process.env, EVENTCAST_BUILD: '1', EVENTCAST_DEBUG: '0' } })
    addon = addonPath()
  }
  let kind = 'missing'
  if (addon && fs.existsSync(addon)) {
    const st = fs.statSync(addon)
    // A debug build is tens of MB (the release one, LTO, ~2 MB); numbers from it mean little.
    const debug = st.size > 20e6
    kind = `${path.basename(addon)}, ${(st.size / 1e6).toFixed(1)} MB, built ${st.mtime.toISOString()}${debug ? ', DEBUG BUILD (run with --build-addon for release)' : ', release'}`
  }
  return kind
}

// ---- peers ------------------------------------------------------------------------------
let nextPort = 20000 + Math.floor(Math.random() * 20000)
class Peer {
  constructor (kind, role, port) {
    this.kind = kind
    this.role = role
    const node = (impl, extra = []) => [process.execPath, [path.join(__dirname, 'peer.js'), '--impl', impl, '--role', role, '--port', String(port), ...extra]]
    // Request/reply peers (roles responder / requester): bench/rr_peer.js and bench/rr_peer.rs.
    const rr = (impl, extra = []) => [process.execPath, [path.join(__dirname, 'rr_peer.js'), '--impl', impl, '--role', role, '--port', String(port), ...extra]]
    const rrRust = (impl) => [path.join(EXAMPLES, 'bench_rr_peer'), [impl, role, String(port)]]
    let [cmd, args] = {
      ours: () => node('ours'),
      'ours-enc': () => node('ours', ['--key', KEY]),
      dgram: () => node('dgram'),
      bare: () => node('bare'),
      'rust-udp': () => [path.join(EXAMPLES, 'bench_udp_baseline'), [role, String(port)]],
      'rust-api': () => [path.join(EXAMPLES, 'bench_rust_peer'), [role, String(port)]],
      'rust-api-enc': () => [path.join(EXAMPLES, 'bench_rust_peer'), [role, String(port), KEY]],
      'ours-nats': () => node('ours', ['--nats', natsServer.url]),
      natsjs: () => node('natsjs', ['--nats', natsServer.url]),
      'rr-ours': () => rr('ours'),
      'rr-dgram': () => rr('dgram'),
      'rr-ours-nats': () => rr('ours', ['--nats', natsServer.url]),
      'rr-natsjs': () => rr('natsjs', ['--nats', natsServer.url]),
      'rr-rust-api': () => rrRust('ours'),
      'rr-rust-api-blockon': () => rrRust('ours-blockon'),
      'rr-rust-udp': () => rrRust('udp')
    }[kind]()
    const cpu = kind.startsWith('rr-') && RR_PIN !== 'off' && os.cpus().length >= 2 ? (RR_PIN === 'split' && role === 'responder' ? '1' : '0') : null
    if (cpu !== null) [cmd, args] = ['taskset', ['-c', cpu, cmd, ...args]]
    this.proc = spawn(cmd, args, { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] })
    this.pending = []
    this.byId = new Map()
    this.nextId = 1
    this.stderr = ''
    this.proc.stderr.on('data', (d) => { this.stderr = (this.stderr + d).slice(-4000) })
    this.proc.on('error', (err) => this._fail(err))
    this.proc.on('exit', (code, sig) => this._fail(new Error(`${kind} ${role} exited (${code ?? sig}) ${this.stderr.trim()}`)))
    this.ready = new Promise((resolve, reject) => { this.pending.push({ resolve, reject }) })
    readline.createInterface({ input: this.proc.stdout }).on('line', (line) => {
      let msg
      try {
        msg = JSON.parse(line)
      } catch {
        return
      }
      let waiter
      if (msg.id !== undefined && msg.id !== null && this.byId.has(msg.id)) {
        waiter = this.byId.get(msg.id)
        this.byId.delete(msg.id)
        this.pending.splice(this.pending.indexOf(waiter), 1)
      } else {
        waiter = this.pending.shift()
        if (waiter && waiter.id !== undefined) this.byId.delete(waiter.id)
      }
      if (!waiter) return
      if (msg.error) waiter.reject(new Error(`${kind} ${role}: ${msg.error}`))
      else waiter.resolve(msg)
    })
  }

  _fail (err) {
    this.dead = err
    for (const w of this.pending.splice(0)) w.reject(err)
    this.byId.clear()
  }

  cmd (obj, timeoutMs = 120000) {
    if (this.dead) return Promise.reject(this.dead)
    const id = this.nextId++
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.kind} ${this.role}: no answer to ${obj.cmd}`)), timeoutMs)
      const waiter = { id, resolve: (v) => { clearTimeout(timer); resolve(v) }, reject: (e) => { clearTimeout(timer); reject(e) } }
      this.pending.push(waiter)
      this.byId.set(id, waiter)
      this.proc.stdin.write(JSON.stringify({ ...obj, id }) + '\n')
    })
  }

  async close () {
    if (this.dead) return
    const exited = new Promise((resolve) => this.proc.once('exit', resolve))
    this.proc.stdin.write(JSON.stringify({ cmd: 'quit' }) + '\n')
    const t = setTimeout(() => this.proc.kill('SIGKILL'), 3000)
    await exited
    clearTimeout(t)
  }
}

async function pair (kind) {
  const port = nextPort++
  const rcv = new Peer(kind, 'recv', port)
  rcv.info = await rcv.ready
  const snd = new Peer(kind, 'send', port)
  snd.info = await snd.ready
  return { rcv, snd, close: () => Promise.all([snd.close(), rcv.close()]) }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
let trialNo = 1

/** Polls the receiver until `expected` arrived or the count stops moving. */
async function drain (rcv, expected, { stableMs = 300, maxMs = 4000 } = {}) {
  const t0 = Date.now()
  let last = -1
  let since = Date.now()
  for (;;) {
    const r = await rcv.cmd({ cmd: 'report' })
    if (r.count >= expected) return r
    if (r.count !== last) {
      last = r.count
      since = Date.now()
    } else if (Date.now() - since >= stableMs) {
      return r
    }
    if (Date.now() - t0 > maxMs) return r
    await sleep(50)
  }
}

async function rateTrial (p, rate, dur, { samples = false } = {}) {
  const trial = trialNo++
  await p.rcv.cmd({ cmd: 'reset', trial })
  const s = await p.snd.cmd({ cmd: 'rate', trial, rate, dur, size: 64 })
  let r = await drain(p.rcv, s.sent)
  if (samples) r = await p.rcv.cmd({ cmd: 'report', samples: true })
  const span = Math.max(s.elapsed, r.count ? r.last - s.t0 : 0) / 1000
  return {
    target: rate,
    sent: s.sent,
    received: r.count,
    achieved: s.sent / (s.elapsed / 1000),
    delivered: r.count / span,
    loss: s.sent ? Math.max(0, 1 - r.count / s.sent) : 1,
    p50: r.p50,
    p99: r.p99,
    samples: r.lat
  }
}

/** Best delivered rate with loss ≤ 0.1%: doubling from startRate, then bisection. */
async function searchRate (p) {
  await rateTrial(p, 2000, 0.3) // warm-up (JIT, caches)
  const trials = []
  const run = async (rate) => {
    const t = await rateTrial(p, rate, S.trialDur)
    t.pass = t.loss <= S.lossLimit
    trials.push(t)
    return t
  }
  let good = 0
  let bad = 0
  let best = 0
  let rate = S.startRate
  let senderBound = false
  for (;;) {
    const t = await run(rate)
    if (t.pass) {
      best = Math.max(best, t.delivered)
      good = rate
      if (t.achieved < 0.9 * rate) { senderBound = true; break }
      if (rate * 2 > S.maxRate) break
      rate *= 2
    } else {
      bad = rate
      if (good) break
      if (rate <= 250) break
      rate = Math.floor(rate / 2)
    }
  }
  if (good && bad && !senderBound) {
    for (let i = 0; i < S.bisect; i++) {
      const mid = Math.round(Math.sqrt(good * bad))
      const t = await run(mid)
      if (t.pass) {
        best = Math.max(best, t.delivered)
        good = mid
      } else {
        bad = mid
      }
    }
  }
  return { best, senderBound, trials }
}

async function latency (p) {
  await rateTrial(p, 1000, 0.3)
  return rateTrial(p, 1000, S.latencyDur)
}

/**
 * Latency at 1,000/s of several pairs measured in turns: `windows` one-second
 * windows per pair, alternating (A B, B A, A B, ...), each pair's samples
 * pooled. On a shared VM, stalls of several ms hit every process at once and
 * come and go within seconds; one pair's single 5-second window after the
 * other's measured the machine's moment as much as the client (p99 of the
 * same client swung 0.7-4.8 ms between windows a minute apart). Taken in
 * turns, both pairs meet the same moments.
 */
async function latencyInTurns (pairs, windows) {
  for (const p of pairs) await rateTrial(p, 1000, 0.3) // warm-up
  const pooled = pairs.map(() => ({ lat: [], sent: 0, received: 0 }))
  for (let w = 0; w < windows; w++) {
    const order = pairs.map((_, i) => i)
    if (w % 2) order.reverse()
    for (const i of order) {
      const t = await rateTrial(pairs[i], 1000, 1, { samples: true })
      pooled[i].lat.push(...(t.samples || []))
      pooled[i].sent += t.sent
      pooled[i].received += t.received
    }
  }
  return pooled.map((x) => ({
    p50: quantile(x.lat, 0.5),
    p99: quantile(x.lat, 0.99),
    samples: x.lat.length,
    loss: x.sent ? Math.max(0, 1 - x.received / x.sent) : 1
  }))
}

/** `count` messages of `size` bytes back to back (1 MiB: count 1, repeated). */
async function bulk (p, count, size, expected, maxMs) {
  const trial = trialNo++
  await p.rcv.cmd({ cmd: 'reset', trial })
  const s = await p.snd.cmd({ cmd: 'bulk', trial, count, size })
  const r = await drain(p.rcv, expected, { stableMs: 600, maxMs })
  return { sent: s, rep: r, ms: r.count ? r.last - s.t0 : null, delivered: r.count >= expected }
}

const raw = (kind) => kind === 'dgram' || kind === 'rust-udp'
const chunks = (size) => Math.ceil(size / 1024)

// ---- results -----------------------------------------------------------------------------
const results = {} // figure -> kind -> [values per repeat]
const notes = []
function put (figure, kind, value) {
  results[figure] = results[figure] || {}
  ;(results[figure][kind] = results[figure][kind] || []).push(value)
}

/** `fn()`, or null when it fails: the failure goes to the notes under `label`, the run goes on. */
async function noted (label, fn) {
  try {
    return await fn()
  } catch (err) {
    notes.push(`${label}: ${err.message.split('\n')[0]}`)
    return null
  }
}

async function withPair (kind, fn) {
  let p
  try {
    return await noted(kind, async () => {
      p = await pair(kind)
      return fn(p)
    })
  } finally {
    if (p) await p.close().catch(() => {})
  }
}

function log (msg) {
  process.stderr.write(`  ${msg}\n`)
}

async function scenarioRate (kinds, figure) {
  for (const kind of kinds) {
    await withPair(kind, async (p) => {
      const r = await searchRate(p)
      put(figure, kind, r.best)
      const top = r.trials.filter((t) => t.pass).map((t) => Math.round(t.delivered)).join(' ')
      log(`${figure} ${kind}: best ${Math.round(r.best)}/s${r.senderBound ? ' (sender-bound)' : ''}; trials ${r.trials.map((t) => `${t.target}:${(t.loss * 100).toFixed(2)}%`).join(' ')} passing ${top}`)
    })
  }
}

async function scenarioLatency () {
  // rust-api: where the time goes (the Rust driver alone vs the hop into JS).
  for (const kind of ['ours', 'dgram', 'rust-udp', 'rust-api']) {
    await withPair(kind, async (p) => {
      const t = await latency(p)
      put('lat50', kind, t.p50)
      put('lat99', kind, t.p99)
      const unc = [p.snd.info, p.rcv.info].map((i) => i.clockUncertaintyMs).filter((u) => u !== undefined)
      log(`latency ${kind}: p50 ${t.p50?.toFixed(3)} ms p99 ${t.p99?.toFixed(3)} ms, loss ${(t.loss * 100).toFixed(2)}%${unc.length ? `; clock calibration ± ${unc.map((u) => (u * 1000).toFixed(1)).join(' / ')} µs (sender / receiver)` : ''}`)
      if (t.p50 !== null && t.p50 < 0) notes.push(`latency ${kind}: negative p50 (${t.p50.toFixed(3)} ms): the two clocks disagree; discard this repeat`)
    })
  }
}

async function scenarioMib () {
  const size = 1 << 20
  for (const kind of ['ours', 'dgram', 'rust-udp']) {
    await withPair(kind, async (p) => {
      const times = []
      let ok = 0
      for (let i = 0; i < S.mibCount; i++) {
        const r = await bulk(p, 1, size, raw(kind) ? chunks(size) : 1, 4000)
        if (r.delivered) {
          ok++
          times.push(r.ms)
        }
        await sleep(100)
      }
      put('mibOk', kind, ok / S.mibCount)
      put('mibMs', kind, times.length ? median(times) : null)
      log(`1 MiB ${kind}: ${ok}/${S.mibCount} delivered, times ${times.map((t) => t.toFixed(1)).join(' ')} ms`)
    })
  }
}

async function scenarioBulk () {
  const { bulkCount: count, bulkSize: size } = S
  for (const kind of ['ours', 'dgram', 'rust-udp']) {
    await withPair(kind, async (p) => {
      await bulk(p, 5, size, raw(kind) ? 5 * chunks(size) : 5, 2000) // warm-up
      const expected = raw(kind) ? count * chunks(size) : count
      const r = await bulk(p, count, size, expected, 8000)
      const mbps = r.ms ? r.rep.bytes / 1e6 / (r.ms / 1000) : 0
      const loss = 1 - r.rep.count / expected
      put('bulkMBs', kind, mbps)
      put('bulkLoss', kind, loss * 100)
      log(`100 KiB x${count} ${kind}: ${mbps.toFixed(1)} MB/s, ${r.rep.count}/${expected} ${raw(kind) ? 'datagrams' : 'messages'} (${(loss * 100).toFixed(2)}% lost), send loop ${(r.sent.t1 - r.sent.t0).toFixed(0)} ms`)
    })
  }
}

async function rssOf (kind) {
  const p = new Peer(kind, 'idle', nextPort++)
  try {
    await p.ready
    await sleep(1500)
    return (await p.cmd({ cmd: 'rss' })).rss
  } finally {
    await p.close()
  }
}

async function scenarioMemory () {
  try {
    const bare = await rssOf('bare')
    const ours = await rssOf('ours')
    put('idleRss', 'bare', bare / 1e6)
    put('idleRss', 'ours', ours / 1e6)
    put('idleDelta', 'ours', (ours - bare) / 1e6)
    log(`idle RSS: bare node ${(bare / 1e6).toFixed(1)} MB, started instance ${(ours / 1e6).toFixed(1)} MB`)
  } catch (err) {
    notes.push(`memory: ${err.message}`)
  }
}

async function scenarioSoak () {
  await withPair('ours', async (p) => {
    const trial = trialNo++
    await p.rcv.cmd({ cmd: 'reset', trial, lat: false })
    const rate = 10000
    const sending = p.snd.cmd({ cmd: 'rate', trial, rate, dur: SOAK, size: 64 }, (SOAK + 60) * 1000)
    const samples = []
    const every = Math.max(1, SOAK / 15)
    const t0 = Date.now()
    while (Date.now() - t0 < SOAK * 1000) {
      await sleep(every * 1000)
      const [a, b] = await Promise.all([p.rcv.cmd({ cmd: 'rss' }), p.snd.cmd({ cmd: 'rss' })])
      samples.push({ t: (Date.now() - t0) / 1000, rcv: a.rss / 1e6, snd: b.rss / 1e6 })
    }
    const s = await sending
    const r = await drain(p.rcv, s.sent)
    // Growth after warm-up: last sample minus the first one past 20% of the run and past
    // the sender's retention window (3 × messageTtl = 9 s of sent datagrams kept for repair).
    const base = samples.find((x) => x.t >= Math.max(SOAK * 0.2, Math.min(10, SOAK * 0.5))) || samples[0]
    const end = samples[samples.length - 1]
    put('soakRcv', 'ours', end.rcv - base.rcv)
    put('soakSnd', 'ours', end.snd - base.snd)
    put('soakLoss', 'ours', (1 - r.count / s.sent) * 100)
    put('soakSndPeak', 'ours', Math.max(...samples.map((x) => x.snd)))
    put('soakRcvPeak', 'ours', Math.max(...samples.map((x) => x.rcv)))
    log(`soak ${SOAK}s at ${rate}/s: receiver RSS ${samples.map((x) => x.rcv.toFixed(0)).join(' ')} MB; sender ${samples.map((x) => x.snd.toFixed(0)).join(' ')} MB; loss ${((1 - r.count / s.sent) * 100).toFixed(3)}%`)
    results.soakSamples = samples
  })
}

// ---- NATS -----------------------------------------------------------------------------------
// One local nats-server for the NATS scenarios (in the namespace, loopback only),
// allowing 8 MB payloads so the plain client sends a 1 MiB message whole.
const natsServer = { url: null, proc: null }
async function startNatsServer () {
  const bin = ['/usr/sbin/nats-server', '/usr/bin/nats-server'].find((p) => fs.existsSync(p)) || 'nats-server'
  const port = 40000 + Math.floor(Math.random() * 20000)
  const conf = path.join(os.tmpdir(), `eventcast-bench-nats-${process.pid}.conf`)
  fs.writeFileSync(conf, 'max_payload: 8MB\n')
  natsServer.proc = spawn(bin, ['-a', '127.0.0.1', '-p', String(port), '-c', conf], { stdio: 'ignore' })
  // Unref'd: the server must not keep the bench alive once the scenarios are
  // done (it used to: `--only nats` never exited); 'exit' then kills it.
  natsServer.proc.unref()
  process.on('exit', () => natsServer.proc && natsServer.proc.kill('SIGKILL'))
  const net = require('node:net')
  for (let i = 0; i < 200; i++) {
    const ok = await new Promise((resolve) => {
      const c = net.connect(port, '127.0.0.1')
      c.once('data', () => { c.destroy(); resolve(true) })
      c.once('error', () => resolve(false))
    })
    if (ok) {
      natsServer.url = `nats://127.0.0.1:${port}`
      return
    }
    await sleep(25)
  }
  throw new Error(`${bin} did not start`)
}

/**
 * eventcast over NATS beside the plain `nats` client: rate, latency, 1 MiB.
 * Both pairs stay up for the whole scenario: each searches its rate, then
 * their latencies are taken in turns (see `latencyInTurns`), then 1 MiB.
 */
async function scenarioNats () {
  if (!natsServer.url) {
    try {
      await startNatsServer()
    } catch (err) {
      notes.push(`nats: ${err.message}`)
      return
    }
  }
  // Each step is tried per pair: one that fails is noted and left out, the other still measured.
  const up = []
  try {
    for (const kind of ['ours-nats', 'natsjs']) {
      const p = await noted(kind, () => pair(kind))
      if (p) up.push({ kind, p })
    }
    for (const { kind, p } of up) {
      await noted(kind, async () => {
        const r = await searchRate(p)
        put('natsRate', kind, r.best)
        log(`nats rate ${kind}: best ${Math.round(r.best)}/s${r.senderBound ? ' (sender-bound)' : ''}; trials ${r.trials.map((t) => `${t.target}:${(t.loss * 100).toFixed(2)}%`).join(' ')}`)
      })
    }
    const lat = await noted('nats latency', () => latencyInTurns(up.map((x) => x.p), S.natsLatencyWindows))
    for (const [i, { kind }] of (lat ? up : []).entries()) {
      const t = lat[i]
      put('natsLat50', kind, t.p50)
      put('natsLat99', kind, t.p99)
      log(`nats latency ${kind} (${S.natsLatencyWindows} windows of 1 s, in turns): p50 ${t.p50?.toFixed(3)} ms p99 ${t.p99?.toFixed(3)} ms over ${t.samples} samples, loss ${(t.loss * 100).toFixed(2)}%`)
    }
    for (const { kind, p } of up) {
      await noted(kind, async () => {
        const times = []
        for (let n = 0; n < S.mibCount; n++) {
          const m = await bulk(p, 1, 1 << 20, 1, 4000)
          if (m.delivered) times.push(m.ms)
          await sleep(100)
        }
        put('natsMibOk', kind, times.length / S.mibCount)
        put('natsMibMs', kind, times.length ? median(times) : null)
        log(`nats 1 MiB ${kind}: ${times.length}/${S.mibCount} delivered, times ${times.map((x) => x.toFixed(1)).join(' ')} ms`)
      })
    }
  } finally {
    await Promise.all(up.map(({ p }) => p.close().catch(() => {})))
  }
}

// ---- request/reply round trip ----------------------------------------------------------------
// Each group: ours and its baseline, measured in the same repeat. The figure's
// results are keyed by implementation: `ours`, and the baseline's name.
const RR_GROUPS = [
  { figure: 'rrJs', what: 'JS → JS', impls: [['ours', 'rr-ours'], ['dgram', 'rr-dgram']] },
  // ours: requests awaited in a task on the node's runtime; ours-blockon: by
  // block_on from the main thread (one more thread hand-off per reply).
  { figure: 'rrRust', what: 'Rust → Rust', impls: [['ours', 'rr-rust-api'], ['ours-blockon', 'rr-rust-api-blockon'], ['rust-udp', 'rr-rust-udp']] },
  { figure: 'rrNats', what: 'JS → JS over NATS', impls: [['ours', 'rr-ours-nats'], ['natsjs', 'rr-natsjs']], nats: true }
]

/** A responder and a requester of `kind`, the requester having had a first reply. */
async function rrPair (kind) {
  const port = nextPort++
  const rsp = new Peer(kind, 'responder', port)
  const req = new Peer(kind, 'requester', port)
  const close = () => Promise.all([req.close(), rsp.close()])
  try {
    await Promise.all([rsp.ready, req.ready])
    const w = await req.cmd({ cmd: 'wait' }, 20000)
    if (!w.ok) throw new Error(`no reply within ${Math.round(w.ms)} ms`)
  } catch (err) {
    await close().catch(() => {})
    throw err
  }
  return { req, close }
}

/**
 * Sequential request/reply round trips (one outstanding) of ours and its
 * baseline, as the requester times them: a warm-up, then `rrWindows` windows
 * of `rrPerWindow` round trips per pair, in turns (A B, B A, ...), each pair's
 * samples pooled; for the reason, see `latencyInTurns`.
 */
async function scenarioRr () {
  for (const g of RR_GROUPS) {
    if (g.nats && !natsServer.url) {
      const ok = await noted('rr nats-server', startNatsServer)
      if (ok === null) continue
    }
    const up = []
    try {
      for (const [impl, kind] of g.impls) {
        const p = await noted(`${g.figure} ${kind}`, () => rrPair(kind))
        if (p) up.push({ impl, kind, p, lat: [], errors: 0 })
      }
      for (const x of up) await noted(`${g.figure} ${x.kind} warm-up`, () => x.p.req.cmd({ cmd: 'rr', count: S.rrWarmup }))
      for (let w = 0; w < S.rrWindows; w++) {
        const order = w % 2 ? [...up].reverse() : up
        for (const x of order) {
          const r = await noted(`${g.figure} ${x.kind}`, () => x.p.req.cmd({ cmd: 'rr', count: S.rrPerWindow, samples: true }))
          if (!r) continue
          x.lat.push(...r.lat)
          x.errors += r.errors
        }
      }
      for (const x of up) {
        const p50 = quantile(x.lat, 0.5)
        const p99 = quantile(x.lat, 0.99)
        put(`${g.figure}50`, x.impl, p50)
        put(`${g.figure}99`, x.impl, p99)
        log(`round trip ${g.what} ${x.impl} (${x.kind}): p50 ${p50?.toFixed(3)} ms p99 ${p99?.toFixed(3)} ms over ${x.lat.length} samples (${S.rrWindows} windows in turns), ${x.errors} timed out`)
        if (x.errors) notes.push(`${g.figure} ${x.impl}: ${x.errors} requests got no reply within 1 s (left out of the samples)`)
      }
    } finally {
      await Promise.all(up.map(({ p }) => p.close().catch(() => {})))
    }
  }
}

// ---- table --------------------------------------------------------------------------------
function median (v) {
  const s = v.filter((x) => x !== null && x !== undefined && !Number.isNaN(x)).sort((a, b) => a - b)
  if (!s.length) return null
  const m = s.length >> 1
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}
function fmt (x, digits) {
  if (x === null || x === undefined || Number.isNaN(x)) return '—'
  if (digits === undefined) digits = Math.abs(x) >= 100 ? 0 : Math.abs(x) >= 10 ? 1 : Math.abs(x) >= 1 ? 2 : 3
  return x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })
}
function cell (v, digits) {
  if (!v || !v.length) return '—'
  const s = v.filter((x) => x !== null && x !== undefined)
  if (!s.length) return '—'
  const m = median(s)
  if (s.length === 1) return fmt(m, digits)
  return `${fmt(m, digits)} (${fmt(Math.min(...s), digits)}–${fmt(Math.max(...s), digits)})`
}
function ratios (a, b) {
  if (!a || !b) return []
  const out = []
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    if (a[i] !== null && b[i] !== null && b[i] !== 0) out.push(a[i] / b[i])
  }
  return out
}

function table (addonKind, wallSec) {
  const r = (f, k) => (results[f] || {})[k]
  const rows = []
  const row = (figure, ours, base1, base2, ratio1, ratio2, target, digits) =>
    rows.push([figure, cell(ours, digits), cell(base1, digits), cell(base2, digits), cell(ratio1, 2), cell(ratio2, 2), target])
  row('small events/s, ≤0.1% loss', r('rate', 'ours'), r('rate', 'dgram'), r('rate', 'rust-udp'), ratios(r('rate', 'ours'), r('rate', 'dgram')), ratios(r('rate', 'ours'), r('rate', 'rust-udp')), '≥ 100,000', 0)
  row('latency p50 @1,000/s (ms)', r('lat50', 'ours'), r('lat50', 'dgram'), r('lat50', 'rust-udp'), ratios(r('lat50', 'ours'), r('lat50', 'dgram')), ratios(r('lat50', 'ours'), r('lat50', 'rust-udp')), '≤ 0.1', 3)
  row('latency p99 @1,000/s (ms)', r('lat99', 'ours'), r('lat99', 'dgram'), r('lat99', 'rust-udp'), ratios(r('lat99', 'ours'), r('lat99', 'dgram')), ratios(r('lat99', 'ours'), r('lat99', 'rust-udp')), '≤ 0.5', 3)
  row('1 MiB message: delivered fraction', r('mibOk', 'ours'), r('mibOk', 'dgram'), r('mibOk', 'rust-udp'), [], [], 'every time', 2)
  row('1 MiB message: median time (ms)', r('mibMs', 'ours'), r('mibMs', 'dgram'), r('mibMs', 'rust-udp'), ratios(r('mibMs', 'ours'), r('mibMs', 'dgram')), ratios(r('mibMs', 'ours'), r('mibMs', 'rust-udp')), '≤ 15', 1)
  row('100 KiB back to back (MB/s)', r('bulkMBs', 'ours'), r('bulkMBs', 'dgram'), r('bulkMBs', 'rust-udp'), ratios(r('bulkMBs', 'ours'), r('bulkMBs', 'dgram')), ratios(r('bulkMBs', 'ours'), r('bulkMBs', 'rust-udp')), '≥ 150', 1)
  row('100 KiB back to back: loss %', r('bulkLoss', 'ours'), r('bulkLoss', 'dgram'), r('bulkLoss', 'rust-udp'), [], [], '0', 2)
  const head = ['figure', 'ours (JS API)', 'raw Node dgram', 'raw Rust UDP', 'ours/dgram', 'ours/Rust UDP', 'target']
  const rows2 = []
  const row2 = (figure, ours, base, ratio, target, digits) => rows2.push([figure, cell(ours, digits), cell(base, digits), cell(ratio, 2), target])
  row2('encrypted small events/s (vs ours plain)', r('enc', 'ours-enc'), r('rate', 'ours'), ratios(r('enc', 'ours-enc'), r('rate', 'ours')), 'ratio ≥ 0.95', 0)
  row2('Rust API → Rust API events/s (vs raw Rust UDP)', r('rustapi', 'rust-api'), r('rate', 'rust-udp'), ratios(r('rustapi', 'rust-api'), r('rate', 'rust-udp')), '≥ 150,000', 0)
  row2('Rust API encrypted events/s (vs Rust API plain)', r('rustapi', 'rust-api-enc'), r('rustapi', 'rust-api'), ratios(r('rustapi', 'rust-api-enc'), r('rustapi', 'rust-api')), 'ratio ≥ 0.95', 0)
  row2('Rust API latency p50 @1,000/s, ms (vs raw Rust UDP)', r('lat50', 'rust-api'), r('lat50', 'rust-udp'), ratios(r('lat50', 'rust-api'), r('lat50', 'rust-udp')), '—', 3)
  row2('Rust API latency p99 @1,000/s, ms (vs raw Rust UDP)', r('lat99', 'rust-api'), r('lat99', 'rust-udp'), ratios(r('lat99', 'rust-api'), r('lat99', 'rust-udp')), '—', 3)
  row2('idle started instance RSS, MB (vs bare Node)', r('idleRss', 'ours'), r('idleRss', 'bare'), r('idleDelta', 'ours'), 'delta ≤ 10 MB (ratio col = delta MB)', 1)
  row2(`soak ${SOAK}s @10,000/s: receiver RSS growth, MB`, r('soakRcv', 'ours'), null, [], 'flat', 1)
  row2(`soak ${SOAK}s @10,000/s: sender RSS growth, MB`, r('soakSnd', 'ours'), null, [], 'flat', 1)
  row2(`soak ${SOAK}s @10,000/s: sender / receiver peak RSS, MB`, r('soakSndPeak', 'ours'), r('soakRcvPeak', 'ours'), [], 'ours col = sender, baseline col = receiver', 1)
  row2(`soak ${SOAK}s @10,000/s: loss %`, r('soakLoss', 'ours'), null, [], '≤ 0.1', 3)
  const head2 = ['figure', 'ours', 'baseline', 'ratio', 'target']
  const rows3 = []
  const row3 = (figure, f, target, digits) => rows3.push([figure, cell(r(f, 'ours-nats'), digits), cell(r(f, 'natsjs'), digits), cell(ratios(r(f, 'ours-nats'), r(f, 'natsjs')), 2), target])
  row3('small events/s, ≤0.1% loss', 'natsRate', 'ratio ≥ 0.8', 0)
  row3('latency p50 @1,000/s, in turns (ms)', 'natsLat50', '—', 3)
  row3('latency p99 @1,000/s, in turns (ms)', 'natsLat99', 'ratio ≤ 1.5', 3)
  row3('1 MiB message: delivered fraction', 'natsMibOk', 'every time', 2)
  row3('1 MiB message: median time (ms)', 'natsMibMs', '—', 1)
  const head3 = ['NATS (local nats-server)', 'ours over NATS (JS API)', 'plain nats client', 'ours/plain', 'target']
  const rows4 = []
  const row4 = (figure, f, base, target, digits, baseFigure = f, impl = 'ours') =>
    rows4.push([figure, cell(r(f, impl), digits), cell(r(baseFigure, base), digits), cell(ratios(r(f, impl), r(baseFigure, base)), 2), target])
  row4('JS → JS p50 (ms) / Node dgram ping-pong', 'rrJs50', 'dgram', 'ratio ≤ 2', 3)
  row4('JS → JS p99 (ms) / Node dgram ping-pong', 'rrJs99', 'dgram', '—', 3)
  row4('JS → JS p50 (ms) / Rust UDP ping-pong', 'rrJs50', 'rust-udp', '—', 3, 'rrRust50')
  row4('Rust → Rust p50 (ms) / Rust UDP ping-pong', 'rrRust50', 'rust-udp', 'ratio ≤ 2', 3)
  row4('Rust → Rust p99 (ms) / Rust UDP ping-pong', 'rrRust99', 'rust-udp', '—', 3)
  row4('Rust → Rust, block_on caller, p50 (ms) / Rust UDP', 'rrRust50', 'rust-udp', 'ratio ≤ 2', 3, 'rrRust50', 'ours-blockon')
  row4('Rust → Rust, block_on caller, p99 (ms) / Rust UDP', 'rrRust99', 'rust-udp', '—', 3, 'rrRust99', 'ours-blockon')
  row4('NATS JS → JS p50 (ms) / plain nats request()', 'rrNats50', 'natsjs', 'ratio ≤ 1.3', 3)
  row4('NATS JS → JS p99 (ms) / plain nats request()', 'rrNats99', 'natsjs', '—', 3)
  const head4 = [`request/reply round trip, one outstanding (--rr-pin ${RR_PIN})`, 'ours', 'baseline', 'ours/baseline', 'target']
  const out = []
  out.push(`eventcast bench — ${new Date().toISOString()} — ${os.cpus().length} CPUs (${os.cpus()[0]?.model || '?'}), Node ${process.version}, ${REPEATS} repeat(s)${QUICK ? ', --quick' : ''}, ${Math.round(wallSec)} s`)
  out.push(`addon: ${addonKind}`)
  out.push(`load average (1 min) at start ${loadStart.toFixed(2)}, at end ${os.loadavg()[0].toFixed(2)} — other work on the machine skews absolute numbers; compare ratios`)
  out.push('cells: median (min–max) over repeats; ratios are per repeat, then median (min–max)')
  out.push('')
  out.push(md(head, rows))
  out.push('')
  out.push(md(head2, rows2))
  if (results.natsRate || results.natsLat50 || results.natsMibMs) {
    out.push('')
    out.push(md(head3, rows3))
  }
  if (results.rrJs50 || results.rrRust50 || results.rrNats50) {
    out.push('')
    out.push(md(head4, rows4))
  }
  if (results.micro) {
    out.push('')
    out.push(md(['micro (one process)', 'ns/op', 'ops/s'], results.micro.map((m) => [m.name, fmt(m.ns, 0), fmt(1e9 / m.ns, 0)])))
  }
  if (notes.length) {
    out.push('')
    out.push('notes:')
    for (const n of notes) out.push(`- ${n}`)
  }
  return out.join('\n')
}

function md (head, rows) {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)))
  const line = (cells) => '| ' + cells.map((c, i) => String(c).padEnd(w[i])).join(' | ') + ' |'
  return [line(head), '|' + w.map((n) => '-'.repeat(n + 2)).join('|') + '|', ...rows.map(line)].join('\n')
}

// ---- main ---------------------------------------------------------------------------------
const loadStart = os.loadavg()[0]
async function main () {
  const started = Date.now()
  const addonKind = build()
  console.log(`bench: ${REPEATS} repeat(s)${QUICK ? ' (quick)' : ''}; soak ${SOAK} s; scenarios ${[...ONLY].join(',')}`)
  for (let rep = 0; rep < REPEATS; rep++) {
    log(`--- repeat ${rep + 1}/${REPEATS}`)
    // Interleaved per repeat, so a ratio compares runs close in time on a noisy machine.
    if (ONLY.has('rate')) await scenarioRate(['ours', 'dgram', 'rust-udp'], 'rate')
    if (ONLY.has('enc')) await scenarioRate(['ours-enc'], 'enc')
    if (ONLY.has('rustapi')) await scenarioRate(['rust-api', 'rust-api-enc'], 'rustapi')
    if (ONLY.has('latency')) await scenarioLatency()
    if (ONLY.has('mib')) await scenarioMib()
    if (ONLY.has('bulk')) await scenarioBulk()
    if (ONLY.has('memory')) await scenarioMemory()
    if (ONLY.has('nats')) await scenarioNats()
    if (ONLY.has('rr')) await scenarioRr()
  }
  if (ONLY.has('soak')) await scenarioSoak()
  if (ONLY.has('micro')) {
    const r = spawnSync(process.execPath, [path.join(__dirname, 'micro.js'), '--json', ...(QUICK ? ['--quick'] : [])], { cwd: ROOT, encoding: 'utf8' })
    try {
      results.micro = JSON.parse(r.stdout.trim().split('\n').pop())
    } catch {
      notes.push(`micro: ${(r.stderr || r.stdout || '').trim().split('\n').pop()}`)
    }
  }
  const text = table(addonKind, (Date.now() - started) / 1000)
  console.log('\n' + text)
  const json = process.env.BENCH_JSON || path.join(ROOT, 'target', 'bench-results.json')
  try {
    fs.mkdirSync(path.dirname(json), { recursive: true })
    fs.writeFileSync(json, JSON.stringify({ date: new Date().toISOString(), quick: QUICK, repeats: REPEATS, soak: SOAK, results, notes, table: text }, null, 2))
    console.log(`\n(raw results: ${path.relative(ROOT, json)})`)
  } catch {}
}

main().catch((err) => {
  console.error(`bench: ${err.stack}`)
  process.exit(1)
})
