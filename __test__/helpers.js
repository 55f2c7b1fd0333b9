'use strict'
// Shared test helpers. Every test that opens a socket calls requireNetns()
// first: tests must never send datagrams to a real network.
const path = require('node:path')
const fs = require('node:fs')
const readline = require('node:readline')
const { spawn } = require('node:child_process')
const { inPrivateNetns } = require('../scripts/netns.js')

const root = path.resolve(__dirname, '..')

/** An instance's private state (index.js keeps it behind Symbol(eventcast.state)). */
function stateOf (ec) {
  const sym = Object.getOwnPropertySymbols(ec).find((s) => s.description === 'eventcast.state')
  if (!sym) throw new Error('index.js keeps its state under Symbol(eventcast.state)')
  return ec[sym]
}

function requireNetns () {
  if (!inPrivateNetns()) {
    throw new Error('refusing to open sockets outside a private network namespace (this host has a real network). ' +
      'Run the tests with `npm test`, which enters one, or under: ' +
      "unshare -n sh -c 'ip link set lo up; ip route add 224.0.0.0/4 dev lo; node --test __test__/'")
  }
}

/** A random port for a test group (a range apart from the defaults that examples use). */
function port () {
  return 20000 + Math.floor(Math.random() * 20000)
}

/** Resolves with the args of the next `event` on `emitter`, rejects after `ms`. */
function next (emitter, event, ms = 3000) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      emitter.off(event, on)
      reject(new Error(`timed out after ${ms} ms waiting for ${String(event)}`))
    }, ms)
    function on (...args) {
      clearTimeout(t)
      resolve(args)
    }
    emitter.once(event, on)
  })
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** Polls `pred` every 50 ms for up to `ms`; resolves with its last value. */
async function waitFor (pred, ms) {
  const end = Date.now() + ms
  while (Date.now() < end) {
    if (pred()) return true
    await sleep(50)
  }
  return pred()
}

/**
 * Captures the eventcast log records written to stdout while fn runs (async).
 * Anything else passes through: under `node --test`, stdout also carries the runner's reports.
 */
async function captureStdout (fn) {
  const orig = process.stdout.write
  let out = ''
  process.stdout.write = function (chunk, ...rest) {
    if (typeof chunk === 'string' && chunk.startsWith('{"name":"eventcast"')) {
      out += chunk
      return true
    }
    return orig.call(this, chunk, ...rest)
  }
  try {
    await fn()
  } finally {
    process.stdout.write = orig
  }
  return out
}

function records (out) {
  return out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l))
}

/** Splits a 0.1.x datagram into meta bytes and body. */
function splitDatagram (buf) {
  const metaLength = buf.readUInt16BE(0)
  return { meta: buf.subarray(2, 2 + metaLength), body: buf.subarray(2 + metaLength) }
}

/** The real 0.1.2 datagrams: crates/eventcast-engine/tests/fixtures/eventcast-0.1.2.json (a copy of shared/vectors, see its README). */
function vectors () {
  return JSON.parse(fs.readFileSync(path.join(root, 'crates', 'eventcast-engine', 'tests', 'fixtures', 'eventcast-0.1.2.json'), 'utf8'))
}

/** The Rust CLI binary (release preferred), or null. */
function cliPath () {
  // The newest build: `npm test`'s `cargo test` has just rebuilt the debug
  // one; a release binary left from an older checkout may lack new flags.
  const built = ['target/release/eventcast', 'target/debug/eventcast']
    .map((p) => path.join(root, p))
    .filter((f) => fs.existsSync(f))
    .sort((a, b) => fs.statSync(b).mtimeMs - fs.statSync(a).mtimeMs)
  return built[0] || null
}

/** Instances made with make() are stopped after the file's tests (so a failed test cannot hang the run). */
const made = new Set()
function make (opts) {
  const Eventcast = require('..')
  const ec = Eventcast(opts)
  made.add(ec)
  return ec
}
async function stopAll () {
  await Promise.all([...made].map((ec) => Promise.all([ec.stop().catch(() => {}), ec.closeRepl()])))
  made.clear()
}
require('node:test').after(stopAll)

/** Runs hostile-attacker.js with cfg in a child process; resolves with its JSON lines (the last one is 'done'). */
function attack (cfg, onLine = () => {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(__dirname, 'hostile-attacker.js'), JSON.stringify(cfg)], { stdio: ['ignore', 'pipe', 'inherit'] })
    const lines = []
    readline.createInterface({ input: child.stdout }).on('line', (l) => {
      const m = JSON.parse(l)
      lines.push(m)
      onLine(m)
    })
    child.on('exit', (code) => {
      if (code === 0 && lines.some((m) => m.type === 'done')) resolve(lines)
      else reject(new Error(`attacker exited with ${code}: ${JSON.stringify(lines.slice(-2))}`))
    })
  })
}

module.exports = { stateOf, waitFor, attack, make, stopAll, root, requireNetns, port, next, sleep, captureStdout, records, splitDatagram, vectors, cliPath }
