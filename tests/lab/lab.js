#!/usr/bin/env node
'use strict'
// The lab's scenario runner. run.sh builds the hosts (netlab.sh) and calls this
// with LAB_PREFIX set; every peer runs inside a host namespace via
// `ip netns exec`, so nothing here opens a socket on the machine's network.
//
// Peers: Node senders/receivers (sender.js, receiver.js over the real addon)
// and the Rust CLI (`eventcast listen`). Loss: netlab's nftables rule on the
// receivers' input. Prints a table and exits 1 when a required result is missed.
//
// Usage: lab.js [--only NAME[,NAME]] [--cli PATH] [--json FILE]
const { spawn, spawnSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')
const readline = require('node:readline')
const { Tally, parseArgs } = require('./common.js')
const { presenceScenario } = require('./presence.js')
const { requestsScenario } = require('./requests.js')
const { scaleScenario, scaleSummary, formatScale, SCALE_RECEIVERS } = require('./scale.js')

const args = parseArgs(process.argv.slice(2))
const ROOT = path.resolve(__dirname, '..', '..')
const PREFIX = process.env.LAB_PREFIX
const CLI = path.resolve(args.cli || process.env.EVENTCAST_CLI || path.join(ROOT, 'target', 'release', 'eventcast'))
const NETLAB = path.join(__dirname, 'netlab.sh')
const SMALL = Number(process.env.LAB_SMALL || 10000)
const SMALL_RATE = Number(process.env.LAB_SMALL_RATE || 2500) // events/s
const BIG = Number(process.env.LAB_BIG || 50)
const BIG_SIZE = 1024 * 1024
const BIG_RATE = Number(process.env.LAB_BIG_RATE || 4) // 1 MiB messages/s (~1030 datagrams each)
const SETTLE_MS = Number(process.env.LAB_SETTLE_MS || 25000) // after the last send: repairs and gap reports
const LINGER_MS = 600 // after all receivers are done: catch late duplicates
// The IPv6 scenarios' group: transient, link-local, so every peer names its interface.
const V6_GROUP = 'ff12::ec:1'
const V6_IF = 'eth0'


const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const log = (msg) => console.error(`[lab ${new Date().toISOString().slice(11, 23)}] ${msg}`)

function setLoss (host, pct, port) {
  const r = spawnSync('bash', ['-c', '. "$0"; lab_loss "$@"', NETLAB, host, String(pct), String(port)], {
    env: { ...process.env, LAB_PREFIX: PREFIX },
    stdio: ['ignore', 'inherit', 'inherit']
  })
  if (r.status !== 0) throw new Error(`lab_loss ${host} ${pct} failed`)
}

/** Datagrams the loss rule of `host` dropped so far (netlab.sh `lab_drops`). */
function drops (host) {
  const r = spawnSync('bash', ['-c', '. "$0"; lab_drops "$@"', NETLAB, host], {
    env: { ...process.env, LAB_PREFIX: PREFIX },
    encoding: 'utf8'
  })
  return Number(r.stdout.trim()) || 0
}

function inHost (host, argv, opts = {}) {
  return spawn('ip', ['netns', 'exec', `${PREFIX}-${host}`, ...argv], { stdio: ['pipe', 'pipe', 'pipe'], ...opts })
}

function exited (child) {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve()
    else child.once('exit', () => resolve())
  })
}

function withTimeout (p, ms, what) {
  let timer
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise((resolve, reject) => { timer = setTimeout(() => reject(new Error(`timeout: ${what}`)), ms) })
  ])
}

/** A peer process; subclasses fill `summary()`, `ready`, `final`. */
class Peer {
  constructor (name, host, child) {
    this.name = name
    this.host = host
    this.child = child
    this.stderr = []
    this.doneAt = null
    this.exit = exited(child)
    readline.createInterface({ input: child.stderr }).on('line', (l) => {
      if (this.stderr.length < 200) this.stderr.push(l)
      this.onStderr(l)
    })
  }

  onStderr () {}
  async stop () {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(this.stopSignal || 'SIGTERM')
    try {
      await withTimeout(this.exit, 15000, `${this.name} exit`)
    } catch (err) {
      this.child.kill('SIGKILL')
      this.crash = `did not exit within 15 s after ${this.stopSignal || 'SIGTERM'}`
    }
    if (this.child.exitCode !== 0 && !this.crash) {
      this.crash = `exit ${this.child.exitCode ?? this.child.signalCode}`
    }
  }
}

/** sender.js or receiver.js speaking JSON lines. */
class NodePeer extends Peer {
  constructor (name, host, script, argv) {
    super(name, host, inHost(host, [process.execPath, path.join(__dirname, script), ...argv]))
    this.last = null
    this.finalMsg = null
    this.errors = []
    this.ready = new Promise((resolve, reject) => {
      this.sent = new Promise((resolveSent) => {
        readline.createInterface({ input: this.child.stdout }).on('line', (l) => {
          let m
          try { m = JSON.parse(l) } catch { return }
          if (m.type === 'ready') resolve(m)
          else if (m.type === 'progress') this.last = m.summary
          else if (m.type === 'sent') resolveSent(m)
          else if (m.type === 'final') { this.finalMsg = m; if (m.summary) this.last = m.summary }
          else if (m.type === 'error') { this.errors.push(`${m.code}: ${m.message}`); resolve(null) }
        })
      })
      this.exit.then(() => reject(new Error(`${this.name} exited: ${this.stderr.slice(-5).join(' | ')}`)))
    })
    this.ready.catch(() => {})
  }

  summary () { return this.last }
  stats () { return this.finalMsg && this.finalMsg.stats }
}

/** The Rust CLI: `eventcast listen --stats`, JSON lines of events on stdout. */
class CliReceiver extends Peer {
  constructor (name, host, port, tally, v6 = false) {
    // IPv6: the interface as the group's zone (the Node peers get it as --interface).
    const group = v6 ? ['--group', `${V6_GROUP}%${V6_IF}`] : []
    super(name, host, inHost(host, [CLI, 'listen', '--port', String(port), '--stats', ...group]))
    this.readyLine = null
    this.stopSignal = 'SIGINT'
    this.tally = tally
    this.statsObj = null
    this.errors = []
    this.ready = new Promise((resolve, reject) => {
      this.readyResolve = resolve
      this.exit.then(() => reject(new Error(`${name} exited: ${this.stderr.slice(-5).join(' | ')}`)))
    })
    this.ready.catch(() => {})
    readline.createInterface({ input: this.child.stdout, crlfDelay: Infinity }).on('line', (l) => {
      let ev
      try { ev = JSON.parse(l) } catch { this.tally.foreign++; return }
      if (ev.name !== 'lab') { this.tally.foreign++; return }
      const [tag, label, i, body] = ev.args
      const buf = body && body.$binary ? Buffer.from(body.$binary.base64, 'base64') : undefined
      this.tally.add(tag, label, i, buf)
    })
  }

  onStderr (l) {
    if (l.startsWith('listening on')) {
      this.readyLine = l
      this.readyResolve()
    }
    else if (l.startsWith('gap ')) {
      try { this.tally.gap(JSON.parse(l.slice(4)).count) } catch { this.errors.push(l) }
    } else if (l.startsWith('stats ')) {
      try { this.statsObj = JSON.parse(l.slice(6)) } catch { this.errors.push(l) }
    } else if (l.startsWith('error ')) this.errors.push(l)
  }

  summary () { return this.tally.summary() }
  stats () { return this.statsObj }
}

/**
 * One scenario. `receivers`: [{name, host, kind: 'node'|'cli', lateMs?}];
 * `senders`: [{label, host}]; every sender sends `count` events, and with
 * `big: {count, size}` that many big ones among them (label `<label>.big`);
 * `scale`: report the group-scaling figures (scale.js).
 */
async function scenario ({ name, loss, count, rate, size = 0, big = null, scale = false, senders, receivers, judge, deafSenders = false, needs012 = false, v6 = false }) {
  if (needs012 && !process.env.EVENTCAST_012_DIR) {
    const why = 'EVENTCAST_012_DIR is not set (a checkout of eventcast 0.1.2 with its node_modules; not on the npm registry)'
    log(`${name}: SKIPPED: ${why}`)
    return { name, loss, count, size, senders: senders.length, rows: [], ok: true, skipped: why, notes: [`skipped: ${why}`] }
  }
  const port = 20000 + Math.floor(Math.random() * 40000)
  const tag = `${name}-${process.pid}-${Date.now()}`
  const expect = Object.fromEntries(senders.map((s) => [s.label, count]))
  if (big) for (const s of senders) expect[`${s.label}.big`] = { n: big.count, size: big.size }
  const bigArgs = big ? ['--big', String(big.count), '--big-size', String(big.size)] : []
  const lossHosts = [...new Set(receivers.map((r) => r.host))]
  log(`${name}: ${senders.length} sender(s) × ${count} ${size ? `${size >= 1024 * 1024 ? `${size / 1024 / 1024} MiB` : `${size / 1024} KiB`} messages` : 'small events'} at ${rate}/s, ${loss}% loss on ${lossHosts.join(',')}, port ${port}${v6 ? `, IPv6 group ${V6_GROUP} on ${V6_IF}` : ''}`)
  const groupArgs = v6 ? ['--group', V6_GROUP, '--interface', V6_IF] : []
  for (const h of lossHosts) setLoss(h, loss, port)
  // A deaf sender hears no repair request: every loss is beyond repair.
  const deafHosts = deafSenders ? [...new Set(senders.map((s) => s.host))] : []
  for (const h of deafHosts) setLoss(h, 100, port)
  const peers = []
  const startReceiver = (r) => {
    const argv = ['--port', String(port), '--tag', tag, '--expect', JSON.stringify(expect), '--size', String(size), ...groupArgs]
    const p = r.kind === 'cli'
      ? new CliReceiver(r.name, r.host, port, new Tally({ tag, expect, size }), v6)
      : new NodePeer(r.name, r.host, r.kind === '0.1.2' ? 'receiver-012.js' : 'receiver.js', argv)
    p.spec = r
    peers.push(p)
    return p
  }
  const result = { name, loss, count, size, senders: senders.length, rows: [], ok: true, notes: [] }
  const t0 = Date.now()
  let sendersP = []
  try {
    const early = receivers.filter((r) => !r.lateMs).map(startReceiver)
    await withTimeout(Promise.all(early.map((p) => p.ready)), 20000, 'receivers ready')
    sendersP = senders.map((s) => {
      const p = new NodePeer(`sender ${s.label}@${s.host}`, s.host, 'sender.js',
        ['--port', String(port), '--tag', tag, '--label', s.label, '--count', String(count), '--rate', String(rate), '--size', String(size), ...bigArgs, ...groupArgs])
      peers.push(p)
      return p
    })
    const ready = await withTimeout(Promise.all(sendersP.map((p) => p.ready)), 20000, 'senders ready')
    if (v6) {
      // The scenario is about IPv6: every peer must be on it, not quietly on IPv4.
      for (const m of ready) {
        if (!m || !/^fe80:/.test(m.address.host)) throw new Error(`a sender advertises ${m && m.address.host}, not its link-local IPv6 address`)
      }
      for (const p of peers.filter((q) => q instanceof CliReceiver)) {
        if (!p.readyLine.includes(`[${V6_GROUP}]:${port}`) || !p.readyLine.includes(`interface ${V6_IF} `)) throw new Error(`${p.name}: ${p.readyLine}`)
      }
    }
    const go = Date.now()
    for (const s of sendersP) s.child.stdin.end('go\n')
    const late = receivers.filter((r) => r.lateMs).map(async (r) => {
      await sleep(r.lateMs)
      const p = startReceiver(r)
      await withTimeout(p.ready, 20000, `${r.name} ready`)
      p.joinedMs = Date.now() - go
      return p
    })
    const sendBudget = (count / rate) * 1000 * 3 + 20000
    const sent = await withTimeout(Promise.all(sendersP.map((p) => p.sent)), sendBudget, 'senders finished sending')
    await Promise.all(late)
    result.sendMs = Math.max(...sent.map((m) => m.ms))
    const recv = peers.filter((p) => p.spec)
    const deadline = Date.now() + SETTLE_MS
    // Done: every event since the receiver joined was delivered or reported lost.
    const isDone = (p) => {
      const s = p.summary()
      return s && s.unique + s.gaps >= (p.spec.lateMs ? s.sinceJoinExpected : s.expected) && (!p.spec.lateMs || s.unique > 0)
    }
    while (Date.now() < deadline) {
      for (const p of recv) if (!p.doneAt && isDone(p)) p.doneAt = Date.now() - go
      if (recv.every((p) => p.doneAt)) break
      await sleep(100)
    }
    await sleep(LINGER_MS)
    result.totalMs = Date.now() - go
  } catch (err) {
    result.ok = false
    result.notes.push(`aborted: ${err.message}`)
  }
  // Receivers first (they print their final tally), then the senders.
  await Promise.all(peers.filter((p) => p.spec).map((p) => p.stop()))
  await Promise.all(sendersP.map((p) => p.stop()))
  const dropped = scale ? Object.fromEntries(lossHosts.map((h) => [h, drops(h)])) : {}
  for (const h of [...lossHosts, ...deafHosts]) setLoss(h, 0)
  for (const p of peers) {
    if (p.crash) { result.ok = false; result.notes.push(`${p.name}: ${p.crash} ${p.stderr.slice(-3).join(' | ')}`) }
    if (p.errors && p.errors.length) result.notes.push(`${p.name}: errors ${p.errors.slice(0, 3).join('; ')}`)
  }
  result.senderStats = sendersP.map((p) => p.stats())
  for (const p of peers.filter((q) => q.spec)) {
    const s = p.summary() || { expected: count * senders.length, unique: 0, dupes: 0, bad: 0, missing: count * senders.length, gaps: 0, foreign: 0, sinceJoinExpected: 0, senders: {} }
    const st = p.stats() || {}
    const row = {
      receiver: p.name,
      host: p.host,
      late: p.spec.lateMs ? p.joinedMs : null,
      sent: s.expected,
      delivered: s.unique,
      dupes: s.dupes,
      bad: s.bad,
      missing: p.spec.lateMs ? s.sinceJoinExpected - s.unique : s.missing,
      gaps: s.gaps,
      gapsStat: st.gapsUnrecovered ?? st.gaps_unrecovered ?? null,
      repairs: st.repairsReceived ?? st.repairs_received ?? null,
      timeMs: p.doneAt,
      summary: s,
      stats: st
    }
    const problems = judge(row, p)
    if (s.foreign) problems.push(`${s.foreign} foreign/garbled events`)
    row.ok = problems.length === 0
    if (!row.ok) { result.ok = false; result.notes.push(`${p.name}: ${problems.join('; ')}`) }
    result.rows.push(row)
  }
  if (scale) {
    result.scale = scaleSummary(result.rows, dropped, sendersP[0] && sendersP[0].finalMsg)
    result.notes.push(formatScale(result.scale))
  }
  result.elapsedMs = Date.now() - t0
  log(`${name}: ${result.ok ? 'PASS' : 'FAIL'} in ${(result.elapsedMs / 1000).toFixed(1)} s`)
  return result
}

// ---- required results ----------------------------------------------
function exactlyOnce (row) {
  const p = []
  if (row.delivered !== row.sent) p.push(`delivered ${row.delivered}/${row.sent}`)
  if (row.dupes) p.push(`${row.dupes} duplicates`)
  if (row.bad) p.push(`${row.bad} corrupted`)
  return p
}

function mostlyAndGapsReported (row) {
  const p = []
  if (row.delivered < Math.ceil(row.sent * 0.99)) p.push(`delivered ${row.delivered}/${row.sent} < 99%`)
  if (row.dupes) p.push(`${row.dupes} duplicates`)
  if (row.bad) p.push(`${row.bad} corrupted`)
  if (row.gaps < row.missing) p.push(`${row.missing} missing but only ${row.gaps} reported as gaps`)
  return p
}

// Loss beyond repair: every message is either delivered once or reported as a gap, never both, never neither.
function exactAccounting (row) {
  const p = []
  if (row.dupes) p.push(`${row.dupes} duplicates`)
  if (row.bad) p.push(`${row.bad} corrupted`)
  if (row.gaps !== row.missing) p.push(`${row.missing} missing but ${row.gaps} reported as gaps`)
  if (!row.missing) p.push('nothing was lost: the scenario tested nothing')
  return p
}

function lateJoiner (row, peer) {
  if (!peer.spec.lateMs) return exactlyOnce(row)
  const p = []
  const s = row.summary
  if (s.unique === 0) p.push('late joiner received nothing')
  for (const [label, x] of Object.entries(s.senders)) {
    if (x.holesSinceJoin) p.push(`${x.holesSinceJoin} of ${label}'s events after its first arrival (#${x.arrived}) missing`)
    if (x.first === 0) p.push(`received ${label}'s event #0, sent long before it joined`)
  }
  if (row.dupes) p.push(`${row.dupes} duplicates`)
  if (row.gaps) p.push(`${row.gaps} gaps reported for events from before its join`)
  return p
}

const standard = [
  { name: 'node', host: 'h2', kind: 'node' },
  { name: 'cli', host: 'h3', kind: 'cli' }
]
const SCENARIOS = []
for (const loss of [0, 5, 10, 30]) {
  const judge = loss >= 30 ? mostlyAndGapsReported : exactlyOnce
  SCENARIOS.push({ name: `small-${loss}`, loss, count: SMALL, rate: SMALL_RATE, senders: [{ label: 'h1', host: 'h1' }], receivers: standard, judge })
  SCENARIOS.push({ name: `big-${loss}`, loss, count: BIG, rate: BIG_RATE, size: BIG_SIZE, senders: [{ label: 'h1', host: 'h1' }], receivers: standard, judge })
}
// The sender hears no repair request (100% loss on its input): loss is final and must be reported.
SCENARIOS.push({ name: 'unrepairable-small-30', loss: 30, count: SMALL / 5, rate: SMALL_RATE, senders: [{ label: 'h1', host: 'h1' }], receivers: standard, judge: exactAccounting, deafSenders: true })
SCENARIOS.push({ name: 'unrepairable-big-5', loss: 5, count: BIG / 5, rate: BIG_RATE, size: BIG_SIZE, senders: [{ label: 'h1', host: 'h1' }], receivers: standard, judge: exactAccounting, deafSenders: true })
SCENARIOS.push({
  name: 'two-senders-5',
  loss: 5,
  count: SMALL / 2,
  rate: SMALL_RATE / 2,
  senders: [{ label: 'h1', host: 'h1' }, { label: 'h4', host: 'h4' }],
  // Two nodes of one host share the port (the unicast-lands-in-the-wrong-node pitfall).
  receivers: [...standard, { name: 'node2', host: 'h3', kind: 'node' }],
  judge: exactlyOnce
})
SCENARIOS.push({
  name: 'late-joiner-5',
  loss: 5,
  count: SMALL,
  rate: SMALL_RATE,
  senders: [{ label: 'h1', host: 'h1' }],
  receivers: [...standard, { name: 'late', host: 'h4', kind: 'node', lateMs: 1500 }],
  judge: lateJoiner
})

// IPv6: a link-local group on eth0, every peer naming its interface (Node by name, the CLI by zone).
for (const loss of [0, 10]) {
  SCENARIOS.push({ name: `v6-small-${loss}`, v6: true, loss, count: SMALL, rate: SMALL_RATE, senders: [{ label: 'h1', host: 'h1' }], receivers: standard, judge: exactlyOnce })
}
SCENARIOS.push({ name: 'v6-big-10', v6: true, loss: 10, count: BIG / 5, rate: BIG_RATE, size: BIG_SIZE, senders: [{ label: 'h1', host: 'h1' }], receivers: standard, judge: exactlyOnce })

// Mixed fleet: our sender, two receivers running the real eventcast 0.1.2. A 0.1.2
// receiver asks once per incomplete message (unicast, to the sender's advertised
// host:port) and drops it a messageTtl later, and it never reports a loss.
const MIXED_MIN = 0.9
function mixedFleet (row) {
  const p = []
  if (row.delivered < Math.ceil(row.sent * MIXED_MIN)) p.push(`delivered ${row.delivered}/${row.sent} < ${MIXED_MIN * 100}%`)
  if (row.dupes) p.push(`${row.dupes} duplicates`)
  if (row.bad) p.push(`${row.bad} corrupted`)
  return p
}
const MIXED_COUNT = Number(process.env.LAB_MIXED || 10)
const MIXED_SIZE = 100 * 1024
SCENARIOS.push({
  name: 'mixed-012-10',
  explicit: true, // only with --only (needs EVENTCAST_012_DIR): __test__/lab.test.js runs it on its own
  needs012: true,
  loss: 10,
  count: MIXED_COUNT,
  rate: BIG_RATE,
  size: MIXED_SIZE,
  senders: [{ label: 'h1', host: 'h1' }],
  receivers: [{ name: '0.1.2@h2', host: 'h2', kind: '0.1.2' }, { name: '0.1.2@h3', host: 'h3', kind: '0.1.2' }],
  judge: mixedFleet
})

// How repair cost grows with the group (scale.js): 16 receivers at 5% loss.
SCENARIOS.push(scaleScenario(SCALE_RECEIVERS, exactlyOnce))

// Presence (presence.js): appear, goodbye, kill -9 timeout, no false downs.
SCENARIOS.push({ name: 'presence-0', loss: 0, receivers: [], run: presenceScenario })
SCENARIOS.push({ name: 'presence-10', loss: 10, receivers: [], run: presenceScenario })

// Request/reply (requests.js): 1,000 requests with a 1 s timeout, >= 99% answered in time.
SCENARIOS.push({ name: 'requests-0', loss: 0, receivers: [], run: requestsScenario })
SCENARIOS.push({ name: 'requests-10', loss: 10, receivers: [], run: requestsScenario })

function fmtTable (results) {
  const head = ['scenario', 'loss', 'sent', 'receiver', 'delivered', 'dupes', 'bad', 'missing', 'gaps rep.', 'gaps stat', 'repairs rcv', 'time s', 'result']
  const rows = [head]
  for (const r of results) {
    for (const row of r.rows) {
      rows.push([
        r.name, `${r.loss}%`, String(row.sent), row.receiver + (row.late !== null ? ` (joined +${(row.late / 1000).toFixed(1)}s, from #${Object.values(row.summary.senders).map((x) => x.arrived).join(',')})` : ''),
        String(row.delivered), String(row.dupes), String(row.bad), String(row.missing), String(row.gaps),
        row.gapsStat === null ? '-' : String(row.gapsStat), row.repairs === null ? '-' : String(row.repairs),
        row.timeMs === null ? `>${((r.totalMs || 0) / 1000).toFixed(1)}` : (row.timeMs / 1000).toFixed(1),
        row.ok ? 'ok' : 'FAIL'
      ])
    }
    if (!r.rows.length) rows.push([r.name, `${r.loss}%`, '-', '-', '-', '-', '-', '-', '-', '-', '-', '-', r.skipped ? 'SKIPPED' : r.presence && r.ok ? 'ok' : 'FAIL'])
  }
  const w = head.map((_, c) => Math.max(...rows.map((row) => row[c].length)))
  const line = (row) => row.map((cell, c) => (c >= 4 && c <= 11 ? cell.padStart(w[c]) : cell.padEnd(w[c]))).join('  ')
  return [line(rows[0]), w.map((n) => '-'.repeat(n)).join('  '), ...rows.slice(1).map(line)].join('\n')
}

function selected () {
  const only = args.only ? String(args.only).split(',') : null
  return SCENARIOS.filter((s) => only ? only.some((o) => s.name.startsWith(o)) : !s.explicit)
}

async function main () {
  const list = selected()
  const needsCli = list.some((s) => s.receivers.some((r) => r.kind === 'cli'))
  if (needsCli && !fs.existsSync(CLI)) {
    console.error(`lab.js: the Rust CLI ${CLI} is missing (cargo build --release --bin eventcast)`)
    process.exit(2)
  }
  const t0 = Date.now()
  const results = []
  const helpers = { inHost, setLoss, log, sleep, withTimeout, exited }
  for (const s of list) results.push(await (s.run ? s.run(s, helpers) : scenario(s)))
  const table = fmtTable(results)
  console.log(`\neventcast network lab — ${new Date().toISOString()} — ${Math.round((Date.now() - t0) / 1000)} s`)
  console.log('time s: from the first send until the receiver had every event (or its gap report); time = time of the scenario when never complete\n')
  console.log(table)
  for (const r of results.filter((x) => x.rows.some((row) => row.stats && row.stats.legacyRequestsSent !== undefined))) {
    for (const row of r.rows) r.notes.push(`${row.receiver}: ${JSON.stringify(row.stats)}`)
    const pick = ({ repairsSent, repairsBudgetLimited, repairsRateLimited, repairsSuppressed, repairRequestsIgnored, repairRequestsRelayed, legacyRepeatRequestsIgnored }) =>
      ({ repairsSent, repairsBudgetLimited, repairsRateLimited, repairsSuppressed, repairRequestsIgnored, repairRequestsRelayed, legacyRepeatRequestsIgnored })
    for (const st of r.senderStats || []) if (st) r.notes.push(`sender: ${JSON.stringify(pick(st))}`)
  }
  const notes = results.flatMap((r) => r.notes.map((n) => `  ${r.name}: ${n}`))
  if (notes.length) console.log(`\nnotes:\n${notes.join('\n')}`)
  if (args.json) fs.writeFileSync(args.json, JSON.stringify({ date: new Date().toISOString(), results }, null, 2))
  const failed = results.filter((r) => !r.ok).map((r) => r.name)
  if (!failed.length && results.length && results.every((r) => r.skipped)) {
    console.log(`\nSKIPPED: ${results.map((r) => `${r.name}: ${r.skipped}`).join('; ')}`)
    process.exit(77)
  }
  console.log(failed.length ? `\nLAB FAILED: ${failed.join(', ')}` : '\nLAB PASSED: every required result met')
  process.exit(failed.length ? 1 : 0)
}

// run.sh asks (before building anything) whether the selected scenarios need the CLI: exit 0 yes, 1 no.
if (args['needs-cli']) process.exit(selected().some((s) => s.receivers.some((r) => r.kind === 'cli')) ? 0 : 1)
// run.sh asks how many hosts to build: 4, or the highest host the selected scenarios use.
else if (args.hosts) {
  const used = selected().flatMap((s) => [...s.receivers, ...(s.senders || [])].map((x) => Number(x.host.slice(1))))
  console.log(Math.max(4, ...used))
} else {
  if (!PREFIX) {
    console.error('lab.js: LAB_PREFIX is not set; run tests/lab/run.sh')
    process.exit(2)
  }
  main().catch((err) => {
    console.error(err)
    process.exit(1)
  })
}
