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
