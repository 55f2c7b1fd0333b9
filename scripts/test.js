#!/usr/bin/env node
'use strict'
// `npm test`: inside a private network namespace, run `cargo test`, then the
// Node tests (`node --test __test__/`). Builds the addon first when missing.
const { spawn, spawnSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')
const { inPrivateNetns, runInNetns } = require('./netns.js')
const { addonPath } = require('./addon.js')

const root = path.resolve(__dirname, '..')

if (!inPrivateNetns()) {
  console.log('[eventcast] entering a private network namespace (loopback only) for the tests')
  process.exit(runInNetns([process.execPath, __filename, ...process.argv.slice(2)]))
}

/** Lines of a test runner's output that say something was skipped, and why. */
const SKIP_PATTERNS = [
  // node --test (TAP): "ok 3 - name # SKIP reason"
  { re: /^\s*ok \d+ - (.*?) # SKIP\s*(.*)$/, fmt: (m) => `${m[1]} (${m[2] || 'no reason given'})` },
  // cargo test: "test name ... ignored, reason"
  { re: /^test (\S+) \.\.\. ignored(?:, (.*))?$/, fmt: (m) => `${m[1]} (${m[2] || 'ignored'})` }
]

/** Runs a step, passing its output through while noting what it skipped. Resolves with its exit status. */
function step (title, cmd, args, skipped) {
  console.log(`\n[eventcast] ${title}: ${cmd} ${args.join(' ')}`)
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: root, stdio: ['inherit', 'pipe', 'inherit'] })
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
      }
    })
    child.on('error', (err) => { console.error(`[eventcast] ${cmd}: ${err.message}`); resolve(1) })
    child.on('close', (code) => resolve(code === null ? 1 : code))
  })
}

// Keep the multicast route in place even when the caller made the namespace.
spawnSync('sh', ['-c', 'ip link set lo up; ip route add 224.0.0.0/4 dev lo 2>/dev/null'], { stdio: 'ignore' })

async function main () {
  const skipped = []
  let status = 0
  if (!process.argv.includes('--node-only')) {
    // --no-fail-fast: one failing test binary must not hide the others' results.
    status = (await step('Rust tests', 'cargo', ['test', '--no-fail-fast'], skipped)) || status
  }
  // The addon built from this checkout, not one from an installed platform package.
  const addon = addonPath()
  if (!addon || path.dirname(addon) !== root) {
    status = (await step('addon missing, building', process.execPath, [path.join(__dirname, 'install.js')], skipped)) || status
  }
  if (!process.argv.includes('--rust-only')) {
    const files = fs.readdirSync(path.join(root, '__test__')).filter((f) => f.endsWith('.test.js')).sort()
      .map((f) => path.join('__test__', f))
    status = (await step('Node tests', process.execPath, ['--test', '--test-concurrency=1', ...files], skipped)) || status
  }
  // One line that says what did not run, so a green run cannot hide it.
  console.log(`\n[eventcast] skipped: ${skipped.length ? `${skipped.length} — ${skipped.join('; ')}` : 'nothing'}`)
  process.exit(status)
}

main()
