'use strict'
// The NATS transport from JS: options, two instances over a real nats-server,
// encryption end to end, and clear failures (see __test__/nats-server.js).
const test = require('node:test')
const assert = require('node:assert/strict')
const { execFile, spawn } = require('node:child_process')
const { requireNetns, port, next, make, cliPath, waitFor } = require('./helpers.js')
const { resolveOptions, nativeOptions } = require('../lib/options.js')
const { startNatsServer, rawSubscriber } = require('./nats-server.js')

requireNetns()

test('options: transport, nats settings and EVENTCAST_TRANSPORT; multicast options with NATS are refused', () => {
  const env = {}
  const nats = resolveOptions({ port: 9000, transport: 'nats://127.0.0.1:4222, tls://n2:4443', nats: { user: 'u', pass: 'p', subject: 'a.b' } }, env).config
  assert.equal(nats.transport, 'nats')
  assert.deepEqual(nats.nats.servers, ['nats://127.0.0.1:4222', 'tls://n2:4443'])
  assert.equal(nats.nats.subject, 'a.b')
  assert.equal(resolveOptions({ port: 9000 }, env).config.transport, 'multicast')
  // The environment decides when the option is absent; the option wins.
  const fromEnv = { EVENTCAST_TRANSPORT: 'nats://10.0.0.5:4222' }
  assert.deepEqual(resolveOptions({ port: 9000 }, fromEnv).config.nats.servers, ['nats://10.0.0.5:4222'])
  assert.equal(resolveOptions({ port: 9000, transport: 'multicast' }, fromEnv).config.transport, 'multicast')
  const refused = (opts, e = env) => assert.throws(() => resolveOptions(opts, e), (err) => err.code === 'ERR_EVENTCAST_OPTIONS', JSON.stringify(opts))
  for (const k of ['address', 'multicastMembership', 'multicastInterface', 'multicastLoopback', 'multicastTtl', 'maxPayloadSize']) {
    refused({ port: 9000, transport: 'nats://h:4222', [k]: k === 'multicastLoopback' ? false : k === 'multicastTtl' || k === 'maxPayloadSize' ? 2 : '239.1.1.1' })
  }
  refused({ port: 9000, multicastTtl: 2 }, fromEnv)
  refused({ port: 9000, nats: { subject: 'x' } })
  refused({ port: 9000, transport: 'http://h:4222' })
  refused({ port: 9000, transport: 'nats://' })
  refused({ port: 9000, transport: 'nats://h:99999' })
  refused({ port: 9000, transport: 'nats://h:4222/path' })
  refused({ port: 9000, transport: ' , ' })
  refused({ port: 9000, transport: 42 })
  refused({ port: 9000 }, { EVENTCAST_TRANSPORT: 'bogus' })
  refused({ port: 9000, transport: 'nats://h', nats: { subject: 'a.*' } })
  refused({ port: 9000, transport: 'nats://h', nats: { subject: 'a b' } })
  refused({ port: 9000, transport: 'nats://h', nats: { user: 'u' } })
  refused({ port: 9000, transport: 'nats://h', nats: { tls: { cert: 'c.pem' } } })
  refused({ port: 9000, transport: 'nats://h', nats: { colour: 'blue' } })
  refused({ port: 9000, transport: 'nats://h', nats: { token: 5 } })
  // nats.group: the LAN group the key is bound to, multicast only; not the subject.
  const paired = resolveOptions({ port: 9000, transport: 'nats://h', nats: { group: '239.1.2.3' } }, env).config
  assert.equal(paired.nats.group, '239.1.2.3')
  assert.equal(paired.nats.subject, undefined)
  assert.equal(nativeOptions(paired).nats.group, '239.1.2.3')
  assert.equal(nativeOptions(nats).nats.group, undefined, 'default: the default group, as before')
  // An IPv6 LAN group (a bridged IPv6 LAN) binds the key the same way.
  const v6 = resolveOptions({ port: 9000, transport: 'nats://h', nats: { group: 'ff15::ec:1' } }, env).config
  assert.equal(nativeOptions(v6).nats.group, 'ff15::ec:1')
  for (const group of ['10.0.0.1', '240.0.0.1', '223.255.255.255', '239.1.2', 'x', '', 239, 'fd00::1']) {
    refused({ port: 9000, transport: 'nats://h', nats: { group } })
  }
  refused({ port: 9000, nats: { group: '239.1.2.3' } })
})

async function pair (url, extra = {}) {
  const p = port()
  const a = make({ port: p, transport: url, ...extra })
  const b = make({ port: p, transport: url, ...extra })
  await Promise.all([a.start(), b.start()])
  return [a, b]
}

test('two instances exchange small, typed and 1 MiB events over NATS', async () => {
  const server = await startNatsServer()
  const [a, b] = await pair(server.url)
  assert.equal(a.config.transport, 'nats')
  let got = next(b, 'hello')
  a.emit('hello', 'world', 1)
  assert.deepEqual(await got, ['world', 1])

  const typed = [new Date(1700000000123), Buffer.from([0, 1, 254, 255]), { deep: { list: [1, 'two', [3, null]] } }, 2n ** 60n]
  got = next(a, 'typed')
  b.emit('typed', ...typed)
  assert.deepEqual(await got, typed)

  const big = Buffer.alloc(1024 * 1024, 7)
  got = next(b, 'big', 10000)
  a.emit('big', big)
  const [received] = await got
  assert.ok(big.equals(received))
  const s = a.stats()
  assert.ok(s.datagramsSent < 40, `1 MiB in ${s.datagramsSent} datagrams (60 KiB chunks)`)
  assert.equal(s.natsConnects, 1)
  assert.equal(b.stats().ownDatagramsIgnored, 0, 'no_echo: nothing of ours comes back')
  await Promise.all([a.stop(), b.stop()])
})

test('a burst emitted back to back travels in bundles and arrives complete and in order', async () => {
  const server = await startNatsServer()
  const [a, b] = await pair(server.url)
  const N = 20000
  const seen = []
  let gaps = 0
  b.on('n', (i) => seen.push(i))
  b.on('gap', (g) => { gaps += g.count })
  for (let i = 0; i < N;) {
    try {
      a.emit('n', i)
      i++
    } catch (err) {
      if (err.code !== 'EBACKPRESSURE') throw err
      await new Promise((resolve) => a.once('drain', resolve))
    }
  }
  await waitFor(() => seen.length + gaps >= N, 20000)
  const [sa, sb] = [a.stats(), b.stats()]
  const report = `delivered ${seen.length}, gaps ${gaps}; sender ${JSON.stringify(sa)}; receiver ${JSON.stringify(sb)}`
  assert.ok(seen.every((v, k) => k === 0 || v > seen[k - 1]), `in order, no duplicates: ${report}`)
  if (sb.natsSlowConsumer === 0 && sb.notificationsDropped === 0) {
    assert.equal(seen.length, N, report)
  } else {
    assert.equal(seen.length + gaps, N, `every event arrives or is a gap: ${report}`)
  }
  assert.ok(sa.natsBundlesSent > 0 && sb.natsBundlesReceived > 0, report)
  assert.ok(sa.natsBundlesSent < N / 10, `bundled: ${report}`)
  assert.equal(sa.sendErrors, 0, report)
  await Promise.all([a.stop(), b.stop()])
})

test('encrypted over NATS: events cross, a plain subscriber sees only ciphertext', async () => {
  const server = await startNatsServer()
  const p = port()
  const sniffer = await rawSubscriber(server.port, `eventcast.${p}`)
  const opts = { port: p, transport: server.url, encrypt: { key: 'a long shared passphrase' } }
  const a = make(opts)
  const b = make(opts)
  await Promise.all([a.start(), b.start()])
  const got = next(b, 'classified', 10000)
  a.emit('classified', 'the-launch-code-0000')
  assert.deepEqual(await got, ['the-launch-code-0000'])
  // The sniffer is another connection: b may get the event before it does.
  assert.ok(await waitFor(() => sniffer.payloads.length > 0, 5000), 'the subscriber saw the traffic')
  for (const m of sniffer.payloads) {
    const text = m.toString('latin1')
    assert.ok(!text.includes('the-launch-code') && !text.includes('classified'), 'plaintext on the subject')
  }
  sniffer.close()
  await Promise.all([a.stop(), b.stop()])
})

test('unreachable server, wrong credentials: start() rejects with a clear code, quickly', async () => {
  const dead = make({ port: port(), transport: `nats://127.0.0.1:${port() + 20000}` })
  let t = Date.now()
  await assert.rejects(dead.start(), (err) => err.code === 'ENATSCONNECT')
  assert.ok(Date.now() - t < 6000, `took ${Date.now() - t} ms`)
  assert.equal(dead.status, 'stopped')

  const server = await startNatsServer(['--user', 'svc', '--pass', 's3cret'])
  const wrong = make({ port: port(), transport: server.url, nats: { user: 'svc', pass: 'nope' } })
  t = Date.now()
  await assert.rejects(wrong.start(), (err) => err.code === 'ENATSAUTH')
  assert.ok(Date.now() - t < 6000, `took ${Date.now() - t} ms`)
  const right = make({ port: port(), transport: server.url, nats: { user: 'svc', pass: 's3cret' } })
  await right.start()
  assert.equal(right.status, 'started')
  await right.stop()
})

test('the Rust CLI and a Node instance exchange events both ways over NATS', { timeout: 60000 }, async (t) => {
  const cli = cliPath()
  if (!cli) return t.skip('Rust CLI not built (cargo build --bin eventcast)')
  const server = await startNatsServer()
  const p = port()
  const subject = `team.cli.${p}`
  const ec = make({ port: p, transport: server.url, nats: { subject } })
  await ec.start()

  // CLI → Node.
  const got = next(ec, 'fromCli', 20000)
  got.catch(() => {}) // awaited below
  await new Promise((resolve, reject) => execFile(cli,
    ['emit', '--port', String(p), '--nats', server.url, '--subject', subject, '--linger-ms', '100', 'fromCli', '"hi"', '{"$date":"2020-01-01T00:00:00Z"}', '[1,{"x":"y"}]'],
    { timeout: 20000 }, (err, _out, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve())))
  const [s, d, arr] = await got
  assert.equal(s, 'hi')
  assert.equal(d.toISOString(), '2020-01-01T00:00:00.000Z')
  assert.deepEqual(arr, [1, { x: 'y' }])

  // Node → CLI.
  const child = spawn(cli, ['listen', '--port', String(p), '--nats', server.url, '--subject', subject, '--count', '1', '--timeout-ms', '20000'], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  child.stdout.on('data', (c) => { out += c })
  const exited = new Promise((resolve) => child.on('exit', resolve))
  await new Promise((resolve, reject) => {
    child.stderr.on('data', (c) => { err += c; if (/listening on nats subject/.test(err)) resolve() })
    exited.then(() => reject(new Error(`listen exited early: ${err}`)))
  })
  ec.emit('fromNode', Buffer.from([1, 2, 3]), { nested: [true, null] })
  assert.equal(await exited, 0, err)
  const ev = JSON.parse(out.trim())
  assert.equal(ev.name, 'fromNode')
  assert.equal(ev.sender.id, ec.id)
  assert.equal(ev.args[0].$binary.base64, 'AQID')
  assert.deepEqual(ev.args[1], { nested: [true, null] })
  await ec.stop()
})

test('bridge: an encrypted LAN on a non-default group pairs with NATS nodes given nats.group, not with others', { timeout: 90000 }, async (t) => {
  const cli = cliPath()
  if (!cli) return t.skip('Rust CLI not built (cargo build --bin eventcast)')
  const server = await startNatsServer()
  const p = port()
  const group = `239.252.${p >> 8}.${p & 255}`
  const bridge = spawn(cli, ['bridge', '--port', String(p), '--group', group, '--nats', server.url, '--timeout-ms', '80000'], { stdio: ['ignore', 'ignore', 'pipe'] })
  t.after(() => bridge.kill('SIGKILL'))
  let bridgeErr = ''
  await new Promise((resolve, reject) => {
    bridge.stderr.on('data', (c) => { bridgeErr += c; if (/bridging/.test(bridgeErr)) resolve() })
    bridge.on('exit', () => reject(new Error(`bridge exited early: ${bridgeErr}`)))
  })
  const encrypt = { key: 'a bridged passphrase' }
  const lan = make({ port: p, multicastMembership: group, encrypt })
  const paired = make({ port: p, transport: server.url, encrypt, nats: { group } })
  const unpaired = make({ port: p, transport: server.url, encrypt })
  await Promise.all([lan.start(), paired.start(), unpaired.start()])
  const seen = []
  unpaired.on('lanSecret', () => seen.push('lanSecret'))
  unpaired.on('pairedSecret', () => seen.push('pairedSecret'))
  lan.on('unpairedSecret', () => seen.push('unpairedSecret'))

  let got = next(paired, 'lanSecret', 15000)
  lan.emit('lanSecret', 'x'.repeat(5000))
  assert.deepEqual(await got, ['x'.repeat(5000)])
  got = next(lan, 'pairedSecret', 15000)
  paired.emit('pairedSecret', 42)
  assert.deepEqual(await got, [42])
  const lanRejected = lan.stats().rejectedDecrypt
  unpaired.emit('unpairedSecret', 1)
  assert.ok(await waitFor(() => lan.stats().rejectedDecrypt > lanRejected, 5000), 'the LAN refused the unpaired node\'s datagram')
  assert.ok(unpaired.stats().rejectedDecrypt >= 5, `the unpaired node refused the bridged chunks: ${unpaired.stats().rejectedDecrypt}`)
  assert.deepEqual(seen, [], 'nothing crossed between mismatched keys')
  await Promise.all([lan.stop(), paired.stop(), unpaired.stop()])
})
