#!/usr/bin/env node
'use strict'
// `npm run pack:local`: this machine's platform package and the main package,
// as npm tarballs, laid out exactly as the release publishes them
// (.github/workflows/release.yml): the addon goes into npm/<platform>/ (what
// `napi artifacts` does for every target there), and both are packed by npm.
//
//   node scripts/pack.js [--build] [--out DIR] [--json]
//
// --build  first build the release addon as the release does (on Linux/glibc
//          with cargo-zigbuild against glibc 2.28 when cargo-zigbuild and zig
//          are installed, e.g. `pip install cargo-zigbuild ziglang`; without
//          them a plain build, which needs the build machine's glibc).
//          Without --build, the addon already built here (npm install /
//          npm run build) is packed.
// --out    where the tarballs go (default: the repository).
// --json   print {main, platform: [...]} with each tarball's path, size and files.
const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')

const root = path.resolve(__dirname, '..')
const argv = process.argv.slice(2)
const flag = (name) => argv.includes(`--${name}`)
const opt = (name, dflt) => (argv.includes(`--${name}`) ? argv[argv.indexOf(`--${name}`) + 1] : dflt)
const out = path.resolve(opt('out', root))
const json = flag('json')
const say = (msg) => (json ? process.stderr : process.stdout).write(`[eventcast pack] ${msg}\n`)
const GLIBC = '2.28'

function run (cmd, args, opts = {}) {
  say(`$ ${cmd} ${args.join(' ')}`)
  const r = spawnSync(cmd, args, { cwd: root, stdio: ['ignore', json ? 2 : 'inherit', 'inherit'], ...opts })
  if (r.error) throw r.error
  if (r.status !== 0) throw new Error(`${cmd} exited with ${r.status}`)
  return r
}

/** The highest GLIBC_x.y symbol version a shared library needs (objdump -T), or null. */
function maxGlibc (file) {
  const r = spawnSync('objdump', ['-T', file], { encoding: 'utf8', maxBuffer: 64 << 20 })
  if (r.status !== 0) return null
  const versions = [...new Set(r.stdout.match(/GLIBC_[0-9.]+/g) || [])].map((v) => v.slice(6))
  const cmp = (a, b) => { const x = a.split('.').map(Number); const y = b.split('.').map(Number); return x[0] - y[0] || (x[1] || 0) - (y[1] || 0) || (x[2] || 0) - (y[2] || 0) }
  return versions.sort(cmp).pop() || null
}

function build () {
  const napi = path.join(root, 'node_modules', '@napi-rs', 'cli', 'dist', 'cli.js')
  const host = /^host: (\S+)$/m.exec(spawnSync('rustc', ['-vV'], { encoding: 'utf8' }).stdout || '')
  if (!host) throw new Error('rustc not found')
  // The committed loader and typings are what ship: the CLI writes the
  // addon and its generated typings into a scratch dir, and only the addon is kept.
  const tmp = fs.mkdtempSync(path.join(require('node:os').tmpdir(), 'eventcast-build-'))
  const args = [napi, 'build', '--platform', '--release', '--package', 'eventcast-node', '--no-js', '--output-dir', tmp]
  const zig = spawnSync('cargo', ['zigbuild', '--help'], { stdio: 'ignore' }).status === 0
  if (host[1].endsWith('-linux-gnu') && zig) {
    // cargo-zigbuild links against zig's glibc 2.28 stubs: the addon loads on
    // every glibc ≥ 2.28 (RHEL 8, Debian 10, Ubuntu 18.10 and later).
    args.push('-x', '--target', `${host[1]}.${GLIBC}`)
  } else if (host[1].endsWith('-linux-gnu')) {
    say(`cargo-zigbuild not found: plain build, needs this machine's glibc (pip install cargo-zigbuild ziglang for ${GLIBC})`)
  }
  run(process.execPath, args)
  for (const f of fs.readdirSync(tmp).filter((f) => f.endsWith('.node'))) fs.copyFileSync(path.join(tmp, f), path.join(root, f))
  fs.rmSync(tmp, { recursive: true, force: true })
}

/** npm pack of dir into out: {file, size, files}. */
function pack (dir) {
  const r = run('npm', ['pack', '--json', '--pack-destination', out], { cwd: dir, stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' })
  const [info] = JSON.parse(r.stdout)
  const file = path.join(out, info.filename)
  say(`${path.relative(root, file) || file}: ${info.size} bytes packed, ${info.unpackedSize} unpacked, ${info.entryCount} files`)
  return { name: info.name, version: info.version, file, size: info.size, unpackedSize: info.unpackedSize, files: info.files.map((f) => f.path) }
}

function main () {
  if (flag('build')) build()
  const { napi: { binaryName } } = require(path.join(root, 'package.json'))
  const addons = fs.readdirSync(root).filter((f) => f.startsWith(`${binaryName}.`) && f.endsWith('.node'))
  if (addons.length === 0) throw new Error('no addon built here: run `npm run build` (or pack with --build)')
  fs.mkdirSync(out, { recursive: true })
  const platform = []
  for (const addon of addons) {
    const target = addon.slice(binaryName.length + 1, -'.node'.length)
    const dir = path.join(root, 'npm', target)
    const manifest = path.join(dir, 'package.json')
    if (!fs.existsSync(manifest)) throw new Error(`${addon}: no npm/${target}/package.json (not in napi.targets? run npx napi create-npm-dirs)`)
    if (require(manifest).main !== addon) throw new Error(`npm/${target}/package.json does not ship ${addon}`)
    if (target.endsWith('-gnu')) say(`${addon} needs GLIBC_${maxGlibc(path.join(root, addon)) || '?'}`)
    fs.copyFileSync(path.join(root, addon), path.join(dir, addon))
    platform.push(pack(dir))
  }
  const main = pack(root)
  if (json) process.stdout.write(JSON.stringify({ main, platform }) + '\n')
}

try {
  main()
} catch (err) {
  console.error(`[eventcast pack] ${err.message}`)
  process.exit(1)
}
