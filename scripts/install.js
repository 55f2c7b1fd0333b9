#!/usr/bin/env node
'use strict'
// `npm install` hook: use a prebuilt addon when one matches this platform and
// loads; otherwise build it from source with cargo (Rust ≥ 1.88 needed).
// Set EVENTCAST_BUILD=1 to force a rebuild, EVENTCAST_DEBUG=1 for a debug build.
const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')
const { addonName } = require('./platform.js')

const root = path.resolve(__dirname, '..')
const addon = path.join(root, addonName())
const debug = process.env.EVENTCAST_DEBUG === '1'
const say = (msg) => console.log(`[eventcast] ${msg}`)

function loads () {
  const r = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(path.join(root, 'binding.js'))}).encodePayload([])`], { stdio: 'pipe' })
  return r.status === 0
}

function run (cmd, args, opts = {}) {
  say(`$ ${cmd} ${args.join(' ')}`)
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', ...opts })
  if (r.error) throw r.error
  if (r.status !== 0) throw new Error(`${cmd} exited with ${r.status}`)
}

function main () {
  if (process.env.EVENTCAST_BUILD !== '1' && fs.existsSync(addon) && loads()) {
    say(`using prebuilt ${path.basename(addon)}`)
    return
  }
  say(`no usable prebuilt ${path.basename(addon)}: building the Rust addon from source${debug ? ' (debug)' : ' (release; this takes a few minutes)'}`)
  const cargo = spawnSync('cargo', ['--version'], { stdio: 'pipe' })
  if (cargo.error || cargo.status !== 0) {
    console.error('[eventcast] cargo not found. Install Rust (https://rustup.rs, 1.88 or newer) and run `npm install` again.')
    process.exit(1)
  }
  say(`toolchain: ${cargo.stdout.toString().trim()}`)
  const napiCli = path.join(root, 'node_modules', '@napi-rs', 'cli', 'dist', 'cli.js')
  if (fs.existsSync(napiCli)) {
    // Development checkout: napi-rs's CLI also regenerates binding.js / binding.d.ts.
    const args = [napiCli, 'build', '--platform', '--features', 'napi', '--js', 'binding.js', '--dts', 'binding.d.ts']
    if (!debug) args.push('--release')
    args.push('--', '--lib') // the CLI binary must not link against Node-API
    run(process.execPath, args)
  } else {
    // Installed as a dependency (no dev tools): plain cargo, then copy the library
    // to the name the committed loader (binding.js) looks for.
    const args = ['build', '--lib', '--features', 'napi']
    if (!debug) args.push('--release')
    run('cargo', args)
    const dir = path.join(root, 'target', debug ? 'debug' : 'release')
    const lib = { win32: 'eventcast.dll', darwin: 'libeventcast.dylib' }[process.platform] || 'libeventcast.so'
    fs.copyFileSync(path.join(dir, lib), addon)
  }
  if (!loads()) {
    console.error(`[eventcast] built ${path.basename(addon)} but it does not load`)
    process.exit(1)
  }
  say(`built ${path.basename(addon)}`)
}

try {
  main()
} catch (err) {
  console.error(`[eventcast] build failed: ${err.message}`)
  process.exit(1)
}
