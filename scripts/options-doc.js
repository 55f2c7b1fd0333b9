'use strict'
// The README's options table, generated from Rust's option table, the one
// declaration of every option (crates/eventcast/src/option_table.rs, read
// through the addon). `node scripts/options-doc.js` prints the table;
// `--write` puts it into README.md between the markers.
// __test__/options-doc.test.js fails when README.md or index.d.ts drift from it.
const fs = require('node:fs')
const path = require('node:path')

const root = path.resolve(__dirname, '..')
const README = path.join(root, 'README.md')
const BEGIN = '<!-- options table: generated from crates/eventcast/src/option_table.rs by `node scripts/options-doc.js --write` -->'
const END = '<!-- end of the generated options table -->'

/** The default as the docs write it: `'text'`, `1`, `true`. */
function jsLiteral (json) {
  const v = JSON.parse(json)
  if (typeof v === 'string') return `'${v}'`
  return v !== null && typeof v === 'object' ? JSON.stringify(v) : String(v)
}

/** The table's "default" cell. */
function defaultCell (spec) {
  if (spec.defaultJson == null) return spec.defaultNote
  const value = '`' + jsLiteral(spec.defaultJson) + '`'
  return spec.defaultNote ? `${value} (${spec.defaultNote})` : value
}

/** The table's "meaning" cell: the meaning with the accepted range where `{range}` marks it, else after it. */
function meaningCell (spec) {
  if (spec.min == null) return spec.meaning
  const range = `${spec.min}–${spec.max}`
  return spec.meaning.includes('{range}') ? spec.meaning.replace('{range}', range) : `${spec.meaning} (${range})`
}

/** The whole table, markers included. */
function table (specs = require('../binding.js').optionTable()) {
  const rows = specs.map((s) => `| \`${s.name}\` | ${defaultCell(s)} | ${meaningCell(s)} |`)
  return [BEGIN, '| option | default | meaning |', '|---|---|---|', ...rows, END].join('\n')
}

/** README.md's current table (markers included), or null when the markers are missing. */
function readmeTable (text = fs.readFileSync(README, 'utf8')) {
  const a = text.indexOf(BEGIN)
  const b = text.indexOf(END)
  return a < 0 || b < a ? null : text.slice(a, b + END.length)
}

module.exports = { table, readmeTable, jsLiteral, BEGIN, END }

if (require.main === module) {
  const fresh = table()
  if (!process.argv.includes('--write')) {
    console.log(fresh)
  } else {
    const text = fs.readFileSync(README, 'utf8')
    const old = readmeTable(text)
    if (old == null) throw new Error(`README.md has no markers:\n${BEGIN}\n${END}`)
    fs.writeFileSync(README, text.replace(old, fresh))
    console.log(old === fresh ? 'README.md: options table unchanged' : 'README.md: options table rewritten')
  }
}
