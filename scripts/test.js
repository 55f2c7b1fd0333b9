#!/usr/bin/env node
'use strict'
// `npm test`: inside a private network namespace, run `cargo test`, then the
// Node tests (`node --test __test__/`). Builds the addon first when missing.
// `npm run test:lab` (this script with --lab): the long runs, the network lab
// (namespaced hosts with packet loss, `__test__/lab.test.js`, tests/lab/) and
// the install that builds the addon from source.
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
      for (const line of lines) {
        for (const { re, fmt } of SKIP_PATTERNS) {
          const m = line.match(re)
          if (m) skipped.push(`${title}: ${fmt(m)}`)
        }
        for (const { re, add } of COUNT_PATTERNS) {
          const m = line.match(re)
          if (m) add(totals, m, line)
        }
      }
    })
    child.on('error', (err) => { console.error(`[eventcast] ${cmd}: ${err.message}`); resolve(1) })
    child.on('close', (code) => resolve(code === null ? 1 : code))
  })
}

// Keep the multicast route in place even when the caller made the namespace.
spawnSync('sh', ['-c', 'ip link set lo up; ip route add 224.0.0.0/4 dev lo 2>/dev/null'], { stdio: 'ignore' })

async function main () {
  const lab = args.includes('--lab')
  const skipped = []
  const totals = { passed: 0, failed: 0, skipped: 0 }
  let status = 0
  if (!lab && !args.includes('--node-only')) {
    // Rust tests that cannot run say so in this file (src/skip_report.rs):
    // cargo would count them as passed.
    const skipLog = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'eventcast-test-')), 'skipped.txt')
    const env = { ...process.env, EVENTCAST_SKIP_LOG: skipLog }
    // --no-fail-fast: one failing test binary must not hide the others' results.
    status = (await step('Rust tests', 'cargo', ['test', '--workspace', '--no-fail-fast'], skipped, totals, env)) || status
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
