'use strict'
// A Node instance and the Rust CLI (target/{release,debug}/eventcast) exchange
// events both ways, plain and encrypted.
const test = require('node:test')
const assert = require('node:assert/strict')
const { spawn, execFile } = require('node:child_process')
const { requireNetns, port, next, make, cliPath } = require('./helpers.js')
const Eventcast = require('..')

requireNetns()
const cli = cliPath()

function defaultSchemeAvailable () {
  try {
    Eventcast({ encrypt: { key: 'probe' } })
    return true
  } catch (err) {
    if (/not available/.test(err.message)) return false
    throw err
  }
}

/** Starts `eventcast listen`, resolves once it is ready; `.lines` resolves with the event lines. */
// Key derivation (PBKDF2, 600k rounds) is slow in debug builds.
const SLOW = 60000

function listen (args, count, timeoutMs = 8000) {
  return new Promise((resolve, reject) => {
    const child = spawn(cli, ['listen', ...args, '--count', String(count), '--timeout-ms', String(timeoutMs)], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    let ready = false
    const lines = new Promise((resolveLines) => {
      child.on('exit', (code) => resolveLines({ code, events: out.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l)), stderr: err }))
    })
    child.stdout.on('data', (d) => { out += d })
    child.stderr.on('data', (d) => {
      err += d
      if (!ready && /listening on/.test(err)) {
        ready = true
        resolve({ lines })
      }
    })
    child.on('error', reject)
    child.on('exit', () => { if (!ready) reject(new Error(`listen exited early: ${err}`)) })
  })
}

function emitCli (args) {
  return new Promise((resolve, reject) => {
    execFile(cli, ['emit', ...args], { timeout: SLOW }, (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout)))
  })
}

const modes = [
  { name: 'plain', node: {}, cli: [] },
  { name: 'legacy 0.1.x encryption', node: { encrypt: { key: 'NSA-KEY', legacy: true } }, cli: ['--key', 'NSA-KEY', '--legacy'] },
  { name: 'default encryption', node: { encrypt: { key: 'correct horse' } }, cli: ['--key', 'correct horse'], needsDefault: true }
]

for (const mode of modes) {
  test(`Node → Rust CLI (${mode.name})`, { timeout: 2 * SLOW }, async (t) => {
    if (!cli) return t.skip('Rust CLI not built (cargo build --bin eventcast)')
    if (mode.needsDefault && !defaultSchemeAvailable()) return t.skip('default encryption scheme not available in this build')
    const p = port()
    const l = await listen(['--port', String(p), ...mode.cli], 1, mode.needsDefault ? SLOW : 8000)
    const ec = make({ port: p, ...mode.node })
    await ec.start()
    ec.emit('greet', 'hi', 5, { a: [1, 2] }, true, null)
    const { code, events, stderr } = await l.lines
    assert.equal(code, 0, stderr)
    assert.equal(events.length, 1)
    assert.equal(events[0].name, 'greet')
    assert.deepEqual(events[0].args, ['hi', 5, { a: [1, 2] }, true, null])
    assert.equal(events[0].sender.id, ec.id)
  })

  test(`Rust CLI → Node (${mode.name})`, { timeout: 2 * SLOW }, async (t) => {
    if (!cli) return t.skip('Rust CLI not built (cargo build --bin eventcast)')
    if (mode.needsDefault && !defaultSchemeAvailable()) return t.skip('default encryption scheme not available in this build')
    const p = port()
    const ec = make({ port: p, ...mode.node })
    await ec.start()
    const got = next(ec, 'fromRust', SLOW)
    got.catch(() => {}) // awaited below; avoid an early unhandled rejection report
    await emitCli(['--port', String(p), ...mode.cli, '--linger-ms', '0', 'fromRust', '"hi"', '5', '{"$date":"2020-01-01T00:00:00Z"}', '[1,{"x":"y"}]'])
    const [s, n, d, arr] = await got
    assert.equal(s, 'hi')
    assert.equal(n, 5)
    assert.ok(d instanceof Date)
    assert.equal(d.toISOString(), '2020-01-01T00:00:00.000Z')
    assert.deepEqual(arr, [1, { x: 'y' }])
  })
}
