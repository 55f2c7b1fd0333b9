'use strict'
// One source of truth for options: Rust's option table
// (crates/eventcast/src/option_table.rs) is the declaration; JS defaults and
// bounds are read from it, and the docs must say what it says.
const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const binding = require('../binding.js')
const { DEFAULTS, BOUNDS, JS_BOUNDS } = require('../lib/options.js')
const { table, readmeTable, jsLiteral } = require('../scripts/options-doc.js')

const root = path.resolve(__dirname, '..')
const specs = binding.optionTable()

test('lib/options.js takes its defaults and bounds from the table', () => {
  assert.deepEqual(Object.keys(DEFAULTS).sort(), specs.map((s) => s.name).sort())
  for (const s of specs) {
    assert.deepEqual(DEFAULTS[s.name], s.defaultJson == null ? undefined : JSON.parse(s.defaultJson), s.name)
    const bound = BOUNDS[s.name] || JS_BOUNDS[s.name]
    assert.deepEqual(bound ? [...bound] : undefined, s.min == null ? undefined : [s.min, s.max], s.name)
  }
})

test('the README\'s options table is the generated one (node scripts/options-doc.js --write)', () => {
  const inReadme = readmeTable()
  assert.ok(inReadme, 'README.md has the options table markers')
  assert.equal(inReadme, table(specs))
})

test('index.d.ts documents every option with its default and range', () => {
  const dts = fs.readFileSync(path.join(root, 'index.d.ts'), 'utf8')
  const start = dts.indexOf('interface Options {')
  const body = dts.slice(start, dts.indexOf('\n  }\n', start))
  // Each property with the doc comment just before it.
  const docs = new Map()
  const documented = (text, prefix = '') => {
    for (const m of text.matchAll(/\/\*\*([\s\S]*?)\*\/\s*(\w+)\?:/g)) docs.set(prefix + m[2], m[1].replace(/\s*\*\s*/g, ' '))
  }
  documented(body)
  // Settings of an object option (`presence.interval`) are documented in its own interface.
  for (const [option, name] of [['presence', 'PresenceSettings']]) {
    const at = dts.indexOf(`interface ${name} {`)
    assert.ok(at >= 0, `index.d.ts has interface ${name}`)
    documented(dts.slice(at, dts.indexOf('\n  }\n', at)), `${option}.`)
  }
  const extra = ['messageRetransmitAttemps', 'transport', 'nats'] // 0.1.x's misspelling; the transport's (README, NATS)
  assert.deepEqual([...docs.keys()].filter((k) => !extra.includes(k)).sort(), specs.map((s) => s.name).sort())
  for (const s of specs) {
    const doc = docs.get(s.name)
    if (s.defaultJson != null) {
      const value = jsLiteral(s.defaultJson)
      assert.ok(doc.includes(value.replace(/^'(.*)'$/, '$1')), `${s.name}: the doc gives the default ${value}: ${doc}`)
    } else {
      assert.ok(doc.includes(s.defaultNote), `${s.name}: the doc says "${s.defaultNote}": ${doc}`)
    }
    if (s.min != null) assert.ok(doc.includes(`${s.min}–${s.max}`), `${s.name}: the doc gives the range ${s.min}–${s.max}: ${doc}`)
  }
})

test('the checks can fail: a changed default or range is seen', () => {
  const changed = specs.map((s) => (s.name === 'multicastTtl' ? { ...s, defaultJson: '2' } : s))
  assert.notEqual(table(changed), table(specs))
})
