'use strict'
// The lab's request/reply scenarios: a responder on h2 answers "double", a
// requester on h1 sends 1,000 requests (10 at a time, 1 s timeout each), with
// input loss on both hosts. Required: at least 99% answered within the
// timeout, every answer the right one.

/** Runs one request scenario; `lab` gives the runner's helpers (inHost, setLoss, log, sleep, withTimeout, exited). */
async function requestsScenario ({ name, loss, count = 1000, concurrency = 10, timeout = 1000 }, lab) {
  const path = require('node:path')
  const readline = require('node:readline')
  const port = 20000 + Math.floor(Math.random() * 40000)
  const result = { name, loss, rows: [], ok: true, notes: [], presence: true }
  lab.log(`${name}: request/reply, ${count} requests (${concurrency} at a time, timeout ${timeout} ms), ${loss}% loss on h1,h2, port ${port}`)
  for (const h of ['h1', 'h2']) lab.setLoss(h, loss, port)
  const children = []
  const start = (host, extra) => {
    const child = lab.inHost(host, [process.execPath, path.join(__dirname, 'request-node.js'), '--port', String(port), ...extra])
    children.push(child)
    const lines = []
    const ready = new Promise((resolve, reject) => {
      readline.createInterface({ input: child.stdout }).on('line', (l) => {
        let m
        try { m = JSON.parse(l) } catch { return }
        lines.push(m)
        if (m.type === 'ready') resolve(m)
      })
      child.once('exit', (code) => reject(new Error(`${host} exited (${code}) before ready`)))
    })
    child.stderr.on('data', (d) => lab.log(`${host}: ${String(d).trim()}`))
    return { child, lines, ready }
  }
  const fail = (why) => { result.ok = false; result.notes.push(`FAIL: ${why}`) }
  try {
    const responder = start('h2', ['--serve'])
    await lab.withTimeout(responder.ready, 20000, 'responder ready')
    const asker = start('h1', ['--ask', String(count), '--concurrency', String(concurrency), '--timeout', String(timeout)])
    await lab.withTimeout(lab.exited(asker.child), 5 * 60 * 1000, 'requester done')
    const r = asker.lines.find((m) => m.type === 'result')
    if (!r) fail('the requester printed no result')
    else {
      const ms = (v) => (v === null ? '-' : `${v.toFixed(2)} ms`)
      result.notes.push(`${r.answered}/${count} answered within ${timeout} ms (${r.timedOut} timed out, ${r.wrong} wrong); rtt p50 ${ms(r.p50)}, p99 ${ms(r.p99)}, max ${ms(r.max)}; requester repairsRequested ${r.stats.repairsRequested}, repairsReceived ${r.stats.repairsReceived}`)
      if (r.wrong) fail(`${r.wrong} wrong answers`)
      if (r.answered * 100 < 99 * count) fail(`only ${r.answered} of ${count} answered within ${timeout} ms`)
    }
  } catch (err) {
    fail(err.message)
  } finally {
    for (const c of children) c.kill('SIGKILL')
    await Promise.all(children.map((c) => lab.exited(c)))
  }
  return result
}

module.exports = { requestsScenario }
