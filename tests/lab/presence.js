'use strict'
// The lab's presence scenarios: Node peers on h1–h4 with presence, input loss
// on every host. An observer on h1 must see each other peer appear (within
// one interval at 0% loss, three at 10%: its first beacons may be lost), one
// leave with a goodbye when it stops, one go down by timeout after a kill -9
// (within the timeout of its last beacon), and no peer go down falsely.

/** Runs one presence scenario; `lab` gives the runner's helpers (inHost, setLoss, log, sleep, withTimeout, exited). */
async function presenceScenario ({ name, loss, interval = 500, timeout = 2500, watchMs = 10000 }, lab) {
  const path = require('node:path')
  const readline = require('node:readline')
  const port = 20000 + Math.floor(Math.random() * 40000)
  const hosts = ['h1', 'h2', 'h3', 'h4']
  const result = { name, loss, rows: [], ok: true, notes: [], presence: true }
  lab.log(`${name}: presence, interval ${interval} ms, timeout ${timeout} ms, ${loss}% loss on ${hosts.join(',')}, port ${port}`)
  for (const h of hosts) lab.setLoss(h, loss, port)
  const nodes = new Map()
  const start = (host) => {
    const child = lab.inHost(host, [process.execPath, path.join(__dirname, 'presence-node.js'),
      '--port', String(port), '--name', `p@${host}`, '--interval', String(interval), '--timeout', String(timeout)])
    const n = { host, child, lines: [], ready: null }
    n.ready = new Promise((resolve, reject) => {
      readline.createInterface({ input: child.stdout }).on('line', (l) => {
        let m
        try { m = JSON.parse(l) } catch { return }
        n.lines.push(m)
        if (m.type === 'ready') resolve(m)
      })
      child.once('exit', (code) => reject(new Error(`${host} exited (${code}) before ready`)))
    })
    child.stderr.on('data', (d) => lab.log(`${host}: ${String(d).trim()}`))
    nodes.set(host, n)
    return n
  }
  const fail = (why) => { result.ok = false; result.notes.push(`FAIL: ${why}`) }
  const observer = () => nodes.get('h1')
  const seen = (type, peer, since = 0) => observer().lines.find((m) => m.type === type && m.name === `p@${peer}` && m.t >= since)
  const waitFor = async (pred, ms) => {
    const end = Date.now() + ms
    while (Date.now() < end) { const v = pred(); if (v) return v; await lab.sleep(20) }
    return pred()
  }
  try {
    await lab.withTimeout(start('h1').ready, 20000, 'observer ready')
    const appearBound = interval * 1.1 * (loss > 0 ? 3 : 1) + 100
    for (const h of ['h2', 'h3', 'h4']) {
      const t0 = Date.now()
      await lab.withTimeout(start(h).ready, 20000, `${h} ready`)
      const up = await waitFor(() => seen('peerUp', h, t0), appearBound + 2000)
      if (!up) fail(`h1 never saw ${h} come up`)
      else {
        const ms = up.t - t0
        result.notes.push(`${h} up at h1 after ${ms} ms (bound ${Math.round(appearBound)})`)
        if (ms > appearBound) fail(`${h} appeared after ${ms} ms > ${Math.round(appearBound)}`)
      }
    }
    // Every peer sees every other (h2 learns of h1 from h1's periodic beacons).
    await lab.sleep(interval * 3.5)
    for (const [h, n] of nodes) {
      const others = new Set(n.lines.filter((m) => m.type === 'peerUp').map((m) => m.name))
      if (others.size < 3) fail(`${h} saw only ${[...others].join(',')}`)
    }
    // h2 stops: a goodbye.
    const tStop = Date.now()
    nodes.get('h2').child.stdin.write('stop\n')
    const bye = await waitFor(() => seen('peerDown', 'h2', tStop), timeout * 2)
    if (!bye) fail('h1 never saw h2 go down after its stop()')
    else {
      result.notes.push(`h2 stop(): down at h1 after ${bye.t - tStop} ms, reason ${bye.reason}`)
      if (bye.reason !== 'goodbye') fail(`h2's stop() seen as ${bye.reason}, not goodbye`)
    }
    // h3 is killed: a timeout.
    const tKill = Date.now()
    nodes.get('h3').child.kill('SIGKILL')
    const gone = await waitFor(() => seen('peerDown', 'h3', tKill), timeout * 3)
    if (!gone) fail('h1 never saw h3 go down after kill -9')
    else {
      const ms = gone.t - tKill
      result.notes.push(`h3 kill -9: down at h1 after ${ms} ms, reason ${gone.reason} (timeout ${timeout})`)
      if (gone.reason !== 'timeout') fail(`h3's kill seen as ${gone.reason}, not timeout`)
      if (ms > timeout + 300) fail(`h3 down ${ms} ms after the kill > timeout + 300`)
    }
    // No false downs of h4 while it runs.
    await lab.sleep(watchMs)
    const falseDowns = [...nodes.values()].flatMap((n) => n.lines.filter((m) => m.type === 'peerDown' && m.name === 'p@h4'))
    if (falseDowns.length) fail(`h4 (alive) reported down ${falseDowns.length} time(s)`)
  } catch (err) {
    fail(err.message)
  } finally {
    for (const n of nodes.values()) n.child.kill('SIGKILL')
    await Promise.all([...nodes.values()].map((n) => lab.exited(n.child)))
  }
  return result
}

module.exports = { presenceScenario }
