'use strict'
// Real nats-server processes for the NATS tests (Debian's package; .ci/run
// installs it), on random loopback ports inside the private namespace, waited
// for until they speak NATS, and killed after the file's tests (also on failure).
const net = require('node:net')
const fs = require('node:fs')
const { spawn } = require('node:child_process')
const { port: randomPort, sleep } = require('./helpers.js')

function natsServerBin () {
  if (process.env.NATS_SERVER) return process.env.NATS_SERVER
  for (const p of ['/usr/sbin/nats-server', '/usr/bin/nats-server']) if (fs.existsSync(p)) return p
  return 'nats-server'
}

const running = new Set()
require('node:test').after(() => { for (const s of running) s.kill() })

/** Resolves once a TCP client on `port` reads the server's INFO line; false on failure. */
function speaksNats (port) {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1')
    const done = (ok) => { sock.destroy(); resolve(ok) }
    sock.setTimeout(1000, () => done(false))
    sock.once('error', () => done(false))
    sock.once('data', (d) => done(d.toString('latin1').startsWith('INFO ')))
  })
}

/** Starts a server with extra `args`; resolves with `{port, url, kill()}`. */
async function startNatsServer (args = []) {
  for (let attempt = 0; attempt < 10; attempt++) {
    const port = randomPort() + 20000
    const child = spawn(natsServerBin(), ['-a', '127.0.0.1', '-p', String(port), ...args], { stdio: 'ignore' })
    let exited = false
    child.on('exit', () => { exited = true })
    child.on('error', () => { exited = true })
    const server = { port, url: `nats://127.0.0.1:${port}`, kill () { child.kill('SIGKILL'); running.delete(server) } }
    running.add(server)
    const deadline = Date.now() + 10000
    while (!exited && Date.now() < deadline) {
      if (await speaksNats(port)) return server
      await sleep(20)
    }
    server.kill()
  }
  throw new Error(`nats-server (${natsServerBin()}) did not start`)
}

/** A bare NATS text-protocol subscriber: collects every payload on `subject`. */
function rawSubscriber (port, subject) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1')
    const payloads = []
    let buf = Buffer.alloc(0)
    let ready = false
    sock.on('error', reject)
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d])
      for (;;) {
        const eol = buf.indexOf('\r\n')
        if (eol < 0) return
        const line = buf.subarray(0, eol).toString('latin1')
        if (line.startsWith('MSG ')) {
          const len = Number(line.split(' ').pop())
          if (buf.length < eol + 2 + len + 2) return
          payloads.push(Buffer.from(buf.subarray(eol + 2, eol + 2 + len)))
          buf = buf.subarray(eol + 2 + len + 2)
          continue
        }
        buf = buf.subarray(eol + 2)
        if (line.startsWith('INFO ')) sock.write(`CONNECT {"verbose":false}\r\nSUB ${subject} 1\r\nPING\r\n`)
        else if (line === 'PING') sock.write('PONG\r\n')
        else if (line === 'PONG' && !ready) { ready = true; resolve({ payloads, close: () => sock.destroy() }) }
      }
    })
  })
}

module.exports = { startNatsServer, rawSubscriber, natsServerBin }
