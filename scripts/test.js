#!/usr/bin/env node
'use strict'
// `npm test`: inside a private network namespace, run `cargo test`, then the
// Node tests (`node --test __test__/`). Builds the addon first when missing.
const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')
const { inPrivateNetns, runInNetns } = require('./netns.js')
const { addonPath } = require('./addon.js')

const root = path.resolve(__dirname, '..')

if (!inPrivateNetns()) {
  console.log('[eventcast] entering a private network namespace (loopback only) for the tests')
  process.exit(runInNetns([process.execPath, __filename, ...process.argv.slice(2)]))
}

function step (title, cmd, args) {
  console.log(`\n[eventcast] ${title}: ${cmd} ${args.join(' ')}`)
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' })
  if (r.error) throw r.error
  return r.status === null ? 1 : r.status
}

// Keep the multicast route in place even when the caller made the namespace.
spawnSync('sh', ['-c', 'ip link set lo up; ip route add 224.0.0.0/4 dev lo 2>/dev/null'], { stdio: 'ignore' })

let status = 0
if (!process.argv.includes('--node-only')) {
  status = step('Rust tests', 'cargo', ['test']) || status
}
// The addon built from this checkout, not one from an installed platform package.
const addon = addonPath()
if (!addon || path.dirname(addon) !== root) {
  status = step('addon missing, building', process.execPath, [path.join(__dirname, 'install.js')]) || status
}
if (!process.argv.includes('--rust-only')) {
  const files = fs.readdirSync(path.join(root, '__test__')).filter((f) => f.endsWith('.test.js')).sort()
    .map((f) => path.join('__test__', f))
  status = step('Node tests', process.execPath, ['--test', '--test-concurrency=1', ...files]) || status
}
process.exit(status)
