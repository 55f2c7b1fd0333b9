'use strict'
// What a user gets from the published tarballs. scripts/pack.js packs
// this machine's platform package (eventcast-<platform>, the addon built here)
// and the main package exactly as the release publishes them; then each test
// installs them into a fresh directory, the way a user's project would.
//
// The registry is out of reach (npm test runs with no network at all), so each
// install is offline with an empty cache, and the one thing the registry would
// have served, the platform package that the main package lists in its
// optionalDependencies, comes from its tarball through an override
// (`overrides` for npm, `pnpm.overrides` for pnpm). The project itself depends
// on `eventcast` only: the platform package arrives because the main package
// asks for it, and binding.js finds it as a package, as after a registry install.
// Other platforms' packages cannot be fetched offline and are skipped, as
// optional dependencies that do not match os/cpu/libc are for a user.
//
// "Nothing is compiled": these installs run with no cargo/rustc on PATH, and
// the test checks that the main package holds no addon and no target/ after
// them, and that the addon loaded is byte for byte the one packed.
const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const { spawnSync } = require('node:child_process')
const { root } = require('./helpers.js')
const { tmp, noRustEnv, pnpmCli, sh, packed, plat, addonFile, project, npmInstall, assertNothingBuilt, exchange, assertExchanged } = require('./package-helpers.js')

test('the tarballs hold only what the package needs', (t) => {
  t.diagnostic(`${path.basename(packed.main.file)}: ${packed.main.size} bytes (${packed.main.unpackedSize} unpacked, ${packed.main.files.length} files)`)
  t.diagnostic(`${path.basename(plat.file)}: ${plat.size} bytes (${plat.unpackedSize} unpacked)`)
  const stray = packed.main.files.filter((f) => /^(__test__|tests?|bench|benches|fuzz|target|examples|npm|\.ci|\.github)\//.test(f) || /\.(node|tgz)$/.test(f))
  assert.deepEqual(stray, [], 'no test, bench, fuzz, target or addon files in the main package')
  for (const f of ['index.js', 'binding.js', 'index.d.ts', 'scripts/install.js', 'scripts/addon.js', 'Cargo.toml', 'Cargo.lock', 'crates/eventcast-node/build.rs', 'crates/eventcast-node/src/lib.rs', 'crates/eventcast-engine/src/lib.rs']) {
    assert.ok(packed.main.files.includes(f), `main package ships ${f}`)
  }
  assert.deepEqual([...plat.files].sort(), ['README.md', addonFile, 'package.json'])
  const name = (f) => path.basename(f)
  assert.equal(name(packed.main.file), `eventcast-${packed.main.version}.tgz`)
  assert.equal(name(plat.file), `${plat.name}-${plat.version}.tgz`)
})

test('optionalDependencies name every napi target\'s package, pinned to this version', () => {
  const pkg = require(path.join(root, 'package.json'))
  const dirs = fs.readdirSync(path.join(root, 'npm')).sort()
  assert.equal(dirs.length, pkg.napi.targets.length, 'one npm/<platform> per napi target')
  const expected = {}
  for (const dir of dirs) {
    const sub = require(path.join(root, 'npm', dir, 'package.json'))
    assert.equal(sub.name, `eventcast-${dir}`)
    assert.equal(sub.version, pkg.version, `${sub.name} has the main package's version`)
    assert.equal(sub.main, `eventcast.${dir}.node`)
    assert.deepEqual(sub.files, [sub.main])
    assert.ok(sub.os && sub.os.length === 1 && sub.cpu && sub.cpu.length === 1, `${sub.name} sets os and cpu`)
    if (sub.os[0] === 'linux') assert.deepEqual(sub.libc, [dir.endsWith('musl') ? 'musl' : 'glibc'])
    expected[sub.name] = pkg.version
  }
  assert.deepEqual(pkg.optionalDependencies, expected)
})

test('the source fallback names the .node as @napi-rs/cli does, for every target', async () => {
  const { parseTriple } = await import('@napi-rs/cli')
  const { napiSuffix } = require('../scripts/install.js')
  const { napi } = require(path.join(root, 'package.json'))
  const extra = ['i686-pc-windows-msvc', 'aarch64-pc-windows-msvc', 'x86_64-unknown-freebsd', 'armv7-unknown-linux-gnueabihf', 'riscv64gc-unknown-linux-gnu', 'powerpc64le-unknown-linux-gnu', 's390x-unknown-linux-gnu', 'loongarch64-unknown-linux-gnu']
  for (const triple of [...napi.targets, ...extra]) {
    assert.equal(napiSuffix(triple), parseTriple(triple).platformArchABI, triple)
  }
})

test('npm install --ignore-scripts, no Rust: the platform package gives a working eventcast', async () => {
  assert.equal(spawnSync('cargo', ['--version'], { env: noRustEnv }).error?.code, 'ENOENT', 'cargo is not on PATH')
  const dir = project('npm-ignore-scripts')
  const r = npmInstall(dir, ['--ignore-scripts'], noRustEnv)
  assert.equal(r.code, 0, r.out)
  assertNothingBuilt(dir)
  assertExchanged(await exchange(dir, dir), dir)
})

test('npm install with scripts, no Rust: the install script finds the prebuilt addon and builds nothing', async () => {
  const dir = project('npm-scripts')
  const r = npmInstall(dir, ['--foreground-scripts'], noRustEnv)
  assert.equal(r.code, 0, r.out)
  assert.match(r.out, new RegExp(`addon found, nothing to build: \\.\\./${plat.name}/${addonFile.replace(/\./g, '\\.')}`))
  assert.doesNotMatch(r.out, /building it from source/)
  assertNothingBuilt(dir)
  assertExchanged(await exchange(dir, dir), dir)
})

test('pnpm 10 (default settings: dependency scripts skipped), no Rust: a working eventcast', { skip: !pnpmCli && 'pnpm is not installed (devDependency `pnpm`: run npm install)' }, async () => {
  const dir = project('pnpm', { pnpm: true })
  const version = sh(process.execPath, [pnpmCli, '--version'], { env: noRustEnv }).out.trim()
  assert.match(version, /^10\./)
  const r = sh(process.execPath, [pnpmCli, 'add', '--offline', '--store-dir', path.join(dir, '.pnpm-store'), packed.main.file], { cwd: dir, env: { ...noRustEnv, CI: '' } })
  assert.equal(r.code, 0, r.out)
  assert.match(r.out, /Ignored build scripts: eventcast/, 'pnpm 10 did not run the install script')
  assertNothingBuilt(dir)
  // pnpm's strict layout: the platform package is reachable only as eventcast's own dependency.
  assert.ok(!fs.existsSync(path.join(dir, 'node_modules', plat.name)))
  assertExchanged(await exchange(dir, dir), dir)
})

test('across installs: a pnpm-installed node hears an npm-installed one', async (t) => {
  const [pnpmDir, npmDir] = ['pnpm', 'npm-ignore-scripts'].map((d) => path.join(tmp, d))
  if (![pnpmDir, npmDir].every((d) => fs.existsSync(path.join(d, 'node_modules')))) return t.skip('needs both installs above')
  assertExchanged(await exchange(pnpmDir, npmDir), pnpmDir)
})

test('the main tarball alone, no Rust: the install fails with one message naming the fix', () => {
  const dir = project('no-prebuilt-no-cargo', { overridePlatform: false })
  const r = npmInstall(dir, ['--foreground-scripts'], noRustEnv)
  assert.notEqual(r.code, 0, r.out)
  const msgs = r.out.split('\n').filter((l) => l.includes('[eventcast] no prebuilt addon'))
  assert.equal(msgs.length, 1, r.out)
  assert.match(msgs[0], /cargo \(Rust\) is not on PATH/)
  assert.match(msgs[0], /rustup\.rs/)
  assert.match(msgs[0], /optional dependencies/)
})
