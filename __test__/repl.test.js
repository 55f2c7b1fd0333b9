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
  // stop closes the REPL server
  await assert.rejects(new Promise((resolve, reject) => {
    const s = net.connect(replPort, '127.0.0.1', resolve)
    s.on('error', reject)
  }), (e) => e.code === 'ECONNREFUSED')
})

test('REPL binds loopback by default and warns, naming the risk, when told otherwise', async () => {
  const a = make({ port: port(), replEnabled: true, log: true, logLevel: 'info' })
  let out = await captureStdout(() => a.start())
  let recs = records(out)
  const listening = recs.find((r) => /REPL listening/.test(r.msg))
  assert.ok(listening, out)
  assert.equal(listening.component, 'repl')
  assert.equal(listening.port, a.config.replPort)
  assert.equal(listening.host, 'localhost')
  assert.ok(!recs.some((r) => r.level === 40), 'no warning for localhost')
  await captureStdout(() => a.stop())

  const b = make({ port: port(), replEnabled: true, replHost: '0.0.0.0', log: true })
  out = await captureStdout(() => b.start())
  recs = records(out)
  const warn = recs.find((r) => r.level === 40)
  assert.ok(warn, out)
  assert.equal(warn.component, 'repl')
  assert.match(warn.msg, /non-loopback/)
  assert.match(warn.msg, /arbitrary code/)
  await captureStdout(() => b.stop())
})
