#!/usr/bin/env node
'use strict'
// `npm test`: inside a private network namespace, run `cargo test`, then the
// Node tests (`node --test __test__/`). Builds the addon first when missing.
// `npm run test:lab` (this script with --lab): the long runs, the network lab
// (namespaced hosts with packet loss, `__test__/lab.test.js`, tests/lab/) and
// the install that builds the addon from source.
// The Rust test binaries run several at a time (most of their time is spent
// waiting on sockets, servers and timers): EVENTCAST_TEST_JOBS, default 3.
// Either way the last line counts what passed, failed and was skipped, a
// skipped test with its reason in the line before: a test that could not run
// is never counted as passed.
const { spawn, spawnSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { inPrivateNetns, runInNetns } = require('./netns.js')
const { addonPath } = require('./addon.js')

const root = path.resolve(__dirname, '..')
const args = process.argv.slice(2)

/**
 * Node test files that make up `npm run test:lab` rather than `npm test`,
 * minutes each: the network lab, and the install that compiles the addon.
 */
const LONG_FILES = ['lab.test.js', 'package-source-build.test.js']

if (!inPrivateNetns()) {
  console.log('[eventcast] entering a private network namespace (loopback only) for the tests')
  process.exit(runInNetns([process.execPath, __filename, ...args]))
}

/** Lines of a test runner's output that say something was skipped, and why. */
const SKIP_PATTERNS = [
  // node --test (TAP): "ok 3 - name # SKIP reason"
  { re: /^\s*ok \d+ - (.*?) # SKIP\s*(.*)$/, fmt: (m) => `${m[1]} (${m[2] || 'no reason given'})` },
  // cargo test: "test name ... ignored, reason"
  { re: /^test (\S+) \.\.\. ignored(?:, (.*))?$/, fmt: (m) => `${m[1]} (${m[2] || 'ignored'})` }
]

/** Lines that count tests: cargo's per-binary result, node's TAP summary. */
const COUNT_PATTERNS = [
  { re: /^test result: \w+\. (\d+) passed; (\d+) failed; (\d+) ignored/, add: (t, m) => { t.passed += +m[1]; t.failed += +m[2]; t.skipped += +m[3] } },
  { re: /^# pass (\d+)$/, add: (t, m) => { t.passed += +m[1] } },
  { re: /^# fail (\d+)$/, add: (t, m) => { t.failed += +m[1] } },
  { re: /^# (?:skipped|todo|cancelled) (\d+)$/, add: (t, m, line) => { if (line.startsWith('# cancelled')) t.failed += +m[1]; else t.skipped += +m[1] } }
]

/** Runs a step, passing its output through while noting what it skipped and counting tests. Resolves with its exit status. */
function step (title, cmd, argv, skipped, totals, env = process.env) {
  console.log(`\n[eventcast] ${title}: ${cmd} ${argv.join(' ')}`)
  return new Promise((resolve) => {
    const child = spawn(cmd, argv, { cwd: root, env, stdio: ['inherit', 'pipe', 'inherit'] })
    let rest = ''
    child.stdout.on('data', (chunk) => {
      process.stdout.write(chunk)
      const lines = (rest + chunk.toString('utf8')).split('\n')
      rest = lines.pop()
      for (const line of lines) scan(title, line, skipped, totals)
    })
    child.on('error', (err) => { console.error(`[eventcast] ${cmd}: ${err.message}`); resolve(1) })
    child.on('close', (code) => resolve(code === null ? 1 : code))
  })
}

/** Counts and skips in one finished output (see `step`). */
function scan (title, text, skipped, totals) {
  for (const line of text.split('\n')) {
    for (const { re, fmt } of SKIP_PATTERNS) {
      const m = line.match(re)
      if (m) skipped.push(`${title}: ${fmt(m)}`)
    }
    for (const { re, add } of COUNT_PATTERNS) {
      const m = line.match(re)
      if (m) add(totals, m, line)
    }
  }
}

/** Runs `cmd argv` to the end, collecting its output. Resolves with `{code, out, ms}`. */
function collect (cmd, argv, opts) {
  const t0 = Date.now()
  return new Promise((resolve) => {
    const child = spawn(cmd, argv, { ...opts, stdio: ['ignore', 'pipe', 'pipe'] })
    const out = []
    child.stdout.on('data', (c) => out.push(c))
    child.stderr.on('data', (c) => out.push(c))
    child.on('error', (err) => resolve({ code: 1, out: `${cmd}: ${err.message}\n`, ms: Date.now() - t0 }))
    child.on('close', (code) => resolve({ code: code === null ? 1 : code, out: Buffer.concat(out).toString('utf8'), ms: Date.now() - t0 }))
  })
}

/**
 * Test binaries known to take long (tens of seconds, mostly waiting): started
 * first, so the run ends when the others have filled the gaps.
 */
const SLOW_FIRST = ['node_hostile_ids', 'nats_bridge', 'nats_bundle', 'fuzz_decode', 'nats_transport', 'cli_roundtrip', 'nats_hostile_repair', 'eventcast_engine', 'nats_resilience']

/**
 * `cargo test --workspace --no-fail-fast`, with the test binaries run
 * `jobs` at a time: builds them (cargo's JSON names each executable and its
 * package), runs each in its package's directory as cargo would, prints each
 * one's output whole when it ends, then the doc tests.
 */
async function rustTests (skipped, totals, env, jobs) {
  const title = 'Rust tests'
  console.log(`\n[eventcast] ${title}: cargo test --workspace --no-fail-fast, ${jobs} test binaries at a time`)
  const build = spawnSync('cargo', ['test', '--workspace', '--no-run', '--message-format=json-render-diagnostics'], { cwd: root, env, stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8', maxBuffer: 256 << 20 })
  if (build.status !== 0) return build.status || 1
  const bins = []
  for (const line of build.stdout.split('\n')) {
    if (!line.startsWith('{')) continue
    const msg = JSON.parse(line)
    if (msg.reason === 'compiler-artifact' && msg.executable && msg.profile.test) {
      bins.push({ name: msg.target.name, exe: msg.executable, dir: path.dirname(msg.manifest_path), kind: msg.target.kind[0] })
    }
  }
  const rank = (b) => { const i = SLOW_FIRST.indexOf(b.name); return i < 0 ? SLOW_FIRST.length : i }
  bins.sort((a, b) => rank(a) - rank(b))
  let status = 0
  let next = 0
  const worker = async () => {
    while (next < bins.length) {
      const b = bins[next++]
      const r = await collect(b.exe, [], { cwd: b.dir, env: { ...env, CARGO_MANIFEST_DIR: b.dir } })
      const label = b.kind === 'lib' ? `unittests ${path.relative(root, b.dir)}` : `${path.relative(root, b.dir)}/tests/${b.name}.rs`
      process.stdout.write(`     Running ${label} (${path.relative(root, b.exe)}, ${(r.ms / 1000).toFixed(1)} s)\n${r.out}`)
      scan(title, r.out, skipped, totals)
      if (r.code !== 0) {
        status = r.code
        console.log(`[eventcast] FAILED: ${label} exited with ${r.code}`)
      }
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, jobs) }, worker))
  const doc = await step(`${title} (doc)`, 'cargo', ['test', '--workspace', '--doc', '--no-fail-fast'], skipped, totals, env)
  return status || doc
}

// Keep the multicast route in place even when the caller made the namespace.
spawnSync('sh', ['-c', 'ip link set lo up; ip route add 224.0.0.0/4 dev lo 2>/dev/null'], { stdio: 'ignore' })

async function main () {
  const lab = args.includes('--lab')
  const skipped = []
  const totals = { passed: 0, failed: 0, skipped: 0 }
  let status = 0
  if (!lab && !args.includes('--node-only')) {
    // Rust tests that cannot run say so in this file (crates/eventcast/src/skip_report.rs):
    // cargo would count them as passed.
    const skipLog = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'eventcast-test-')), 'skipped.txt')
    const env = { ...process.env, EVENTCAST_SKIP_LOG: skipLog }
    // --no-fail-fast: one failing test binary must not hide the others' results.
    const jobs = Number(process.env.EVENTCAST_TEST_JOBS) || 3
    status = (await rustTests(skipped, totals, env, jobs)) || status
    const rustSkips = fs.existsSync(skipLog) ? fs.readFileSync(skipLog, 'utf8').split('\n').filter(Boolean) : []
    for (const line of rustSkips) skipped.push(`Rust tests: ${line}`)
    totals.passed -= rustSkips.length
    totals.skipped += rustSkips.length
    fs.rmSync(path.dirname(skipLog), { recursive: true, force: true })
  }
  // The addon built from this checkout, not one from an installed platform package.
  const addon = addonPath()
  if (!addon || path.dirname(addon) !== root) {
    status = (await step('addon missing, building', process.execPath, [path.join(__dirname, 'install.js')], skipped, totals)) || status
  }
  if (!args.includes('--rust-only')) {
    const files = fs.readdirSync(path.join(root, '__test__')).filter((f) => f.endsWith('.test.js'))
      .filter((f) => LONG_FILES.includes(f) === lab).sort()
      .map((f) => path.join('__test__', f))
    const title = lab ? 'Long tests' : 'Node tests'
    status = (await step(title, process.execPath, ['--test', '--test-concurrency=1', ...files], skipped, totals)) || status
  }
  // What did not run, with the reasons, so a green run cannot hide it; then the counts.
  console.log(`\n[eventcast] skipped: ${skipped.length ? `${skipped.length} — ${skipped.join('; ')}` : 'nothing'}`)
  if (status !== 0 && totals.failed === 0) totals.failed = 1 // a runner that broke without a count
  console.log(`eventcast: ${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped`)
  process.exit(status)
}

main()
