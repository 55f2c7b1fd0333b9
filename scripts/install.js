#!/usr/bin/env node
'use strict'
// `install` hook of the main package. Users get the addon prebuilt from the
// platform package (`eventcast-<platform>`, an optionalDependency that npm,
// pnpm and yarn install for the matching os/cpu/libc only); then this script
// just sees that the generated loader (binding.js) finds it, and exits.
// Package managers that skip install scripts (pnpm ≥ 10, `--ignore-scripts`)
// lose nothing. Only when nothing prebuilt loads does it build from source
// with cargo (Rust ≥ 1.88), and without cargo it fails with one message
// naming the fix.
// EVENTCAST_BUILD=1 forces a source build, EVENTCAST_DEBUG=1 makes it a debug build.
const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')
const { probeAddon } = require('./addon.js')

const root = path.resolve(__dirname, '..')
const debug = process.env.EVENTCAST_DEBUG === '1'
const say = (msg) => console.log(`[eventcast] ${msg}`)

class Failure extends Error {}

function run (cmd, args, opts = {}) {
  say(`$ ${cmd} ${args.join(' ')}`)
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', ...opts })
  if (r.error) throw r.error
  if (r.status !== 0) throw new Failure(`${cmd} exited with ${r.status}`)
  return r
}

/** rustc's host triple: what cargo builds for by default (and so the addon's platform). */
function hostTriple () {
  const r = spawnSync('rustc', ['-vV'], { encoding: 'utf8' })
  const m = /^host: (\S+)$/m.exec(r.stdout || '')
  if (!m) throw new Failure('`rustc -vV` did not name a host triple')
  return m[1]
}

/**
 * The `<platform>-<arch>[-<abi>]` part of the file name binding.js looks for,
 * for a Rust target triple: @napi-rs/cli's naming (parseTriple), needed only
 * when the package is built without the CLI (installed as a dependency).
 */
function napiSuffix (triple) {
  const parts = triple.split('-')
  const arch = { x86_64: 'x64', aarch64: 'arm64', i686: 'ia32', armv7: 'arm', riscv64gc: 'riscv64', powerpc64le: 'ppc64', loongarch64: 'loong64' }[parts[0]] || parts[0]
  const sys = parts[2] === 'apple' || parts[1] === 'apple' ? 'darwin' : parts[2]
  const platform = { windows: 'win32' }[sys] || sys
  const abi = platform === 'darwin' ? null : parts[3]
  return [platform, arch, abi].filter(Boolean).join('-')
}

/** Builds with napi-rs's CLI (development checkout): it also names the file and regenerates the loader. */
function buildWithNapiCli (cli) {
  const args = [cli, 'build', '--platform', '--package', 'eventcast-node', '--output-dir', '.', '--js', 'binding.js', '--dts', 'binding.d.ts']
  if (!debug) args.push('--release')
  run(process.execPath, args)
}

/** Builds with plain cargo (installed as a dependency: no dev tools), as `napi build --platform` would. */
function buildWithCargo () {
  const triple = hostTriple()
  const env = { ...process.env }
  // musl's Rust default links the C runtime statically, which rules out a
  // loadable shared library: the flag @napi-rs/cli adds for musl targets.
  if (triple.includes('musl') && !String(env.RUSTFLAGS || '').includes('crt-static')) {
    env.RUSTFLAGS = `${env.RUSTFLAGS || ''} -C target-feature=-crt-static`.trim()
  }
  const args = ['build', '--package', 'eventcast-node', '--lib', '--message-format=json-render-diagnostics']
  if (!debug) args.push('--release')
  say(`$ cargo ${args.join(' ')}`)
  const r = spawnSync('cargo', args, { cwd: root, env, stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8', maxBuffer: 256 << 20 })
  if (r.error) throw r.error
  if (r.status !== 0) throw new Failure(`cargo exited with ${r.status}`)
  // cargo names the library itself (lib*.so, lib*.dylib, *.dll) and says where it put it.
  let lib = null
  for (const line of r.stdout.split('\n')) {
    if (!line.startsWith('{')) continue
    const msg = JSON.parse(line)
    if (msg.reason === 'compiler-artifact' && msg.target.name === 'eventcast_node' && msg.target.kind.includes('cdylib')) {
      lib = msg.filenames.find((f) => /\.(so|dylib|dll)$/.test(f))
    }
  }
  if (!lib) throw new Failure('cargo reported no cdylib artifact')
  const dest = path.join(root, `eventcast.${napiSuffix(triple)}.node`)
  fs.copyFileSync(lib, dest)
  say(`copied ${lib} to ${path.basename(dest)}`)
}

// A development checkout has its devDependencies, the napi CLI among them.
const napiCli = path.join(root, 'node_modules', '@napi-rs', 'cli', 'dist', 'cli.js')
const checkout = fs.existsSync(napiCli)

function main () {
  if (process.env.EVENTCAST_BUILD !== '1') {
    const found = probeAddon(root)
    // A checkout tests its own code: a published platform package does not count there.
    if (found.file && (!checkout || path.dirname(found.file) === root)) {
      say(`addon found, nothing to build: ${path.relative(root, found.file)}`)
      return
    }
  }
  const cargo = spawnSync('cargo', ['--version'], { encoding: 'utf8' })
  if (cargo.error || cargo.status !== 0) {
    console.error(`[eventcast] no prebuilt addon for ${process.platform}-${process.arch} was installed, and cargo (Rust) is not on PATH to build one. ` +
      'Fix: install without omitting optional dependencies (no --no-optional / --omit=optional, and let the package manager see this os/cpu/libc) ' +
      'so that the eventcast-<platform> package comes along, or install Rust ≥ 1.88 (https://rustup.rs) and reinstall. ' +
      'Prebuilt platforms: Linux x64/arm64 (glibc ≥ 2.28 and musl), macOS x64/arm64, Windows x64.')
    process.exit(1)
  }
  say(`no prebuilt addon loads here: building it from source with ${cargo.stdout.trim()}` +
    (debug ? ' (debug)' : ' (release; this takes a few minutes)'))
  if (checkout) buildWithNapiCli(napiCli)
  else buildWithCargo()
  const built = probeAddon(root)
  if (!built.file || path.dirname(built.file) !== root) throw new Failure(`built the addon but binding.js does not load it: ${built.error || built.file}`)
  say(`built ${path.relative(root, built.file)}`)
}

module.exports = { napiSuffix }

if (require.main === module) {
  try {
    main()
  } catch (err) {
    console.error(`[eventcast] build from source failed: ${err.message}`)
    process.exit(1)
  }
}
