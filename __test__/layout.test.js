'use strict'
// The tree's shape (ARCHITECTURE.md, "Rules"): what the crate boundaries do
// not make the compiler check, checked here from the sources.
const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const { spawnSync } = require('node:child_process')
const { sizes, importCycles, crates, rustFiles } = require('../scripts/layout.js')

const root = path.resolve(__dirname, '..')
const MAX_LINES_OF_CODE = 600

test(`no Rust source file has more than ${MAX_LINES_OF_CODE} lines of code`, () => {
  const over = sizes().filter((s) => s.loc > MAX_LINES_OF_CODE)
  assert.deepEqual(over, [], 'split these by idea (tests into <module>/tests.rs)')
})

test('no file-level import circles inside any crate', () => {
  const found = crates().map((c) => ({ crate: path.basename(c), cycles: importCycles(c) })).filter((c) => c.cycles.length)
  assert.deepEqual(found, [])
})

test('the checker finds a circle when there is one', () => {
  // A crate of two files that name each other's items: the checker must say so.
  const dir = fs.mkdtempSync(path.join(require('node:os').tmpdir(), 'layout-'))
  try {
    fs.mkdirSync(path.join(dir, 'src'))
    fs.writeFileSync(path.join(dir, 'Cargo.toml'), '')
    fs.writeFileSync(path.join(dir, 'src', 'lib.rs'), 'mod a;\nmod b;\npub use a::A;\n')
    fs.writeFileSync(path.join(dir, 'src', 'a.rs'), 'use super::b::B;\npub struct A(B);\n')
    fs.writeFileSync(path.join(dir, 'src', 'b.rs'), 'pub struct B;\nfn f() -> crate::A { todo!() }\n')
    assert.equal(importCycles(dir).length, 1)
    fs.writeFileSync(path.join(dir, 'src', 'b.rs'), 'pub struct B;\n')
    assert.equal(importCycles(dir).length, 0)
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test('only the wire layer writes BSON type codes and bundle framing', () => {
  // Element type bytes as the binding once wrote them (`self.key(0x10, ..)`),
  // and the wire's framing names.
  const bad = []
  for (const c of ['eventcast', 'eventcast-cli', 'eventcast-node']) {
    for (const f of rustFiles(path.join(root, 'crates', c, 'src'))) {
      const text = fs.readFileSync(f, 'utf8')
      for (const [i, line] of text.split('\n').entries()) {
        if (/\bkey\(0x|push\(0x0|\b(BUNDLE_HEADER|FRAME_OVERHEAD|bson_writer|put_key)\b/.test(line)) bad.push(`${path.relative(root, f)}:${i + 1}: ${line.trim()}`)
      }
    }
  }
  assert.deepEqual(bad, [])
})

test('the engine crate has no tokio, socket2 or napi in its dependency tree', (t) => {
  const r = spawnSync('cargo', ['tree', '-p', 'eventcast-engine', '-e', 'normal', '--prefix', 'none', '--offline'], { cwd: root, encoding: 'utf8' })
  if (r.error || r.status !== 0) return t.skip(`cargo tree did not run: ${r.error?.message || r.stderr.split('\n')[0]}`)
  const names = new Set(r.stdout.split('\n').map((l) => l.split(' ')[0]).filter(Boolean))
  assert.ok(names.has('bson'), 'the tree was read')
  for (const n of ['tokio', 'socket2', 'napi', 'napi-derive', 'async-nats', 'clap']) assert.ok(!names.has(n), `${n} in the engine's tree`)
})
