'use strict'
// The TCP REPL.
const test = require('node:test')
const assert = require('node:assert/strict')
const net = require('node:net')
const os = require('node:os')
const { requireNetns, port, next, make, captureStdout, records } = require('./helpers.js')

requireNetns()

function client (p) {
  const sock = net.connect(p, '127.0.0.1')
  let buf = ''
  sock.setEncoding('utf8')
  sock.on('data', (d) => { buf += d })
  const until = (pattern, ms = 3000) => new Promise((resolve, reject) => {
    const t0 = Date.now()
    const check = () => {
      const m = buf.match(pattern)
      if (m) {
        buf = buf.slice(m.index + m[0].length)
        return resolve(m)
      }
      if (Date.now() - t0 > ms) return reject(new Error(`no ${pattern} in ${JSON.stringify(buf)}`))
      setTimeout(check, 10)
    }
    check()
  })
  return { sock, until }
}

test('REPL: prompt, instance in scope as eventcast and ec, connect/disconnect events, clients()', async () => {
  const replPort = port()
  const ec = make({ port: port(), replPort })
  assert.equal(ec.config.replEnabled, true)
  await ec.start()
  const connected = next(ec, 'replConnected')
  const c = client(replPort)
  const prompt = `eventcast@${os.hostname()}> `
  await c.until(new RegExp(prompt.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
  const [info] = await connected
  assert.equal(info.address, '127.0.0.1')
  assert.equal(ec.clients(), 1)
  c.sock.write('ec.id\n')
  await c.until(new RegExp(`'${ec.id}'`))
  c.sock.write('eventcast.config.port === ec.config.port\n')
  await c.until(/true/)
  c.sock.write('ec.emit("fromRepl", 7)\n')
  await c.until(/false|true/)
  const disconnected = next(ec, 'replDisconnected')
  c.sock.end('.exit\n')
  await disconnected
  assert.equal(ec.clients(), 0)
  await ec.stop()
  // As in 0.1.x the REPL outlives stop(); closeRepl() closes it.
  await connectable(replPort)
  await ec.closeRepl()
  await assert.rejects(connectable(replPort), (e) => e.code === 'ECONNREFUSED')
})

function connectable (p) {
  return new Promise((resolve, reject) => {
    const s = net.connect(p, '127.0.0.1', () => { s.destroy(); resolve() })
    s.on('error', reject)
  })
}

/** Connects once the REPL listens (the constructor opens it asynchronously). */
async function clientWhenListening (p) {
  for (let i = 0; i < 100; i++) {
    try {
      await connectable(p)
      break
    } catch (e) {
      if (e.code !== 'ECONNREFUSED') throw e
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  }
  return client(p)
}

test('REPL lifetime as in 0.1.x: open before start(), stop() and start() typed at the prompt, closeRepl()', async () => {
  const replPort = port()
  // 0.1.x's own REPL test: construct with the REPL enabled, connect, no start().
  const ec = make({ port: port(), replPort, replEnabled: true })
  const c = await clientWhenListening(replPort)
  const prompt = new RegExp(`eventcast@${os.hostname().replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}> `)
  await c.until(prompt)
  assert.equal(ec.status, 'stopped')
  c.sock.write('ec.start(); ec.status\n')
  await c.until(/'starting'|'started'/)
  await c.until(prompt)
  if (ec.status !== 'started') await next(ec, 'start')
  assert.equal(ec.status, 'started')
  // stop() typed at the prompt answers, and the session goes on.
  const stopped = next(ec, 'stop')
  c.sock.write('eventcast.stop(() => {})\n')
  await c.until(/true/)
  await stopped
  await c.until(prompt)
  c.sock.write('ec.status\n')
  await c.until(/'stopped'/)
  // ...and start() from the same prompt starts the node again.
  const started = next(ec, 'start')
  c.sock.write('ec.start(() => {}) === ec\n')
  await c.until(/true/)
  await started
  assert.equal(ec.status, 'started')
  await ec.stop()
  assert.equal(ec.clients(), 1, 'the session survived stop()')
  c.sock.on('error', () => {}) // closeRepl() destroys the session: a reset is expected
  const closed = new Promise((resolve) => c.sock.once('close', resolve))
  await ec.closeRepl()
  await closed
  assert.equal(ec.clients(), 0)
  await assert.rejects(connectable(replPort), (e) => e.code === 'ECONNREFUSED')
})

test('REPL binds loopback by default and warns, naming the risk, when told otherwise', async () => {
  let a
  let out = await captureStdout(async () => {
    a = make({ port: port(), replEnabled: true, log: true, logLevel: 'info' })
    await a.start()
  })
  let recs = records(out)
  const listening = recs.find((r) => /REPL listening/.test(r.msg))
  assert.ok(listening, out)
  assert.equal(listening.component, 'repl')
  assert.equal(listening.port, a.config.replPort)
  assert.equal(listening.host, 'localhost')
  assert.ok(!recs.some((r) => r.level === 40), 'no warning for localhost')
  await captureStdout(() => a.stop())

  let b
  out = await captureStdout(async () => {
    b = make({ port: port(), replEnabled: true, replHost: '0.0.0.0', log: true })
    await b.start()
  })
  recs = records(out)
  const warn = recs.find((r) => r.level === 40)
  assert.ok(warn, out)
  assert.equal(warn.component, 'repl')
  assert.match(warn.msg, /non-loopback/)
  assert.match(warn.msg, /arbitrary code/)
  await captureStdout(() => b.stop())
})

test('legacy encryption warns once that it is unauthenticated; the default scheme does not', async () => {
  const legacy = make({ port: port(), encrypt: { key: 'k', legacy: true }, log: true })
  let recs = records(await captureStdout(() => legacy.start()))
  const warns = recs.filter((r) => r.level === 40 && /no integrity check/.test(r.msg))
  assert.equal(warns.length, 1, JSON.stringify(recs))
  await captureStdout(() => legacy.stop())
  recs = records(await captureStdout(async () => { await legacy.start(); await legacy.stop() }))
  assert.ok(!recs.some((r) => /no integrity check/.test(r.msg)), 'warned only once')

  const secure = make({ port: port(), encrypt: { key: 'k' }, log: true })
  recs = records(await captureStdout(async () => { await secure.start(); await secure.stop() }))
  assert.ok(!recs.some((r) => r.level === 40), JSON.stringify(recs))
})

/** Resolves once `sock` is closed (by either side). */
const closed = (sock) => new Promise((resolve) => (sock.destroyed ? resolve() : sock.once('close', resolve)))

test('REPL connection cap: with 16 sessions (replMaxClients default) the 17th is refused, counted and logged; a freed slot is reused', { timeout: 30000 }, async () => {
  const replPort = port()
  const ec = make({ port: port(), replPort, log: true, logLevel: 'warn' })
  assert.equal(ec.config.replMaxClients, 16)
  const prompt = /eventcast@.*> /
  const first = await clientWhenListening(replPort)
  await first.until(prompt)
  const clients = [first]
  for (let i = 1; i < 16; i++) {
    const c = client(replPort)
    await c.until(prompt)
    clients.push(c)
  }
  assert.equal(ec.clients(), 16)
  let refusedClient
  const out = await captureStdout(async () => {
    refusedClient = client(replPort)
    refusedClient.sock.on('error', () => {})
    await closed(refusedClient.sock)
    // A burst of refusals logs once (at most one line a second).
    for (let i = 0; i < 5; i++) {
      const c = client(replPort)
      c.sock.on('error', () => {})
      await closed(c.sock)
    }
  })
  await assert.rejects(refusedClient.until(prompt, 200), 'no prompt for the refused connection')
  assert.deepEqual(ec.replStats(), { clients: 16, refused: 6, idleClosed: 0 })
  const warns = records(out).filter((r) => r.level === 40 && /refused/.test(r.msg))
  assert.equal(warns.length, 1, out)
  assert.equal(warns[0].component, 'repl')
  assert.match(warns[0].msg, /replMaxClients/)
  // The sessions that were let in still work, and a freed slot is taken again.
  clients[3].sock.write('1 + 1\n')
  await clients[3].until(/2/)
  const gone = closed(clients[0].sock)
  clients[0].sock.end('.exit\n')
  await gone
  while (ec.clients() > 15) await new Promise((resolve) => setTimeout(resolve, 10))
  const again = client(replPort)
  await again.until(prompt)
  assert.equal(ec.clients(), 16)
  assert.equal(ec.replStats().refused, 6)
  await ec.closeRepl()
})

test('REPL idle timeout: a session without input for replIdleTimeout ms is closed and counted; one that types stays', { timeout: 30000 }, async () => {
  const replPort = port()
  const ec = make({ port: port(), replPort, replIdleTimeout: 1000 })
  const prompt = /eventcast@.*> /
  const idle = await clientWhenListening(replPort)
  await idle.until(prompt)
  const busy = client(replPort)
  await busy.until(prompt)
  const idleClosed = closed(idle.sock)
  // The busy one types every 100 ms, a tenth of the timeout.
  const typing = setInterval(() => busy.sock.write('1\n'), 100)
  await idleClosed
  await idle.until(/idle for 1000 ms \(replIdleTimeout\): closing/, 100) // told why, before the close
  await new Promise((resolve) => setTimeout(resolve, 1500)) // longer than the timeout: the busy one stays
  clearInterval(typing)
  assert.equal(busy.sock.destroyed, false)
  assert.deepEqual(ec.replStats(), { clients: 1, refused: 0, idleClosed: 1 })
  await ec.closeRepl()
  assert.deepEqual(ec.replStats(), { clients: 0, refused: 0, idleClosed: 0 }, 'zeros without a REPL')
})

test('require("eventcast") without a REPL loads neither node:repl nor node:domain (EventEmitter#emit untouched)', () => {
  const { spawnSync } = require('node:child_process')
  const path = require('node:path')
  const probe = (replEnabled) => {
    const script = `
      const { EventEmitter } = require('node:events')
      const emit = EventEmitter.prototype.emit
      const Eventcast = require(${JSON.stringify(path.resolve(__dirname, '..'))})
      const ec = Eventcast({ port: 9000, replEnabled: ${replEnabled}, replPort: ${replEnabled ? port() : 'undefined'} })
      const loaded = process.moduleLoadList.filter((m) => m === 'NativeModule repl' || m === 'NativeModule domain')
      console.log(JSON.stringify({ loaded, emitUntouched: EventEmitter.prototype.emit === emit }))
      ec.closeRepl()
    `
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 20000 })
    assert.equal(r.status, 0, r.stderr)
    return JSON.parse(r.stdout.trim().split('\n').pop())
  }
  assert.deepEqual(probe(false), { loaded: [], emitUntouched: true })
  // With a REPL they are loaded (so the probe above can see them).
  const withRepl = probe(true)
  assert.deepEqual(withRepl.loaded.sort(), ['NativeModule domain', 'NativeModule repl'])
})
