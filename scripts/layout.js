'use strict'
// The tree's shape, checked (ARCHITECTURE.md "Rules the compiler does not
// enforce"): what crate boundaries cannot say, this does, from the sources.
//
// - `sizes(root)`: Rust source files and their lines of code (lines that are
//   not blank and not only a comment).
// - `importCycles(crateDir)`: file-level import circles inside one crate. A
//   file imports another when it names an item defined there (`use` trees and
//   inline `crate::`/`super::`/`self::` paths, through `pub use` re-exports).
//   A module's file declaring or re-exporting its own children is structure,
//   not an import, and is not counted; a child naming its parent's items is.
// Usage: node scripts/layout.js  (prints both for every crate)
const fs = require('node:fs')
const path = require('node:path')

const root = path.resolve(__dirname, '..')

function rustFiles (dir) {
  const out = []
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name)
    if (e.isDirectory()) out.push(...rustFiles(p))
    else if (e.name.endsWith('.rs')) out.push(p)
  }
  return out
}

/** Lines of code: not blank, not only a comment. */
function linesOfCode (text) {
  return text.split('\n').filter((l) => {
    const t = l.trim()
    return t !== '' && !t.startsWith('//')
  }).length
}

/** [{file, loc}] of every .rs file under crates/<name>/src, largest first. */
function sizes (dir = path.join(root, 'crates')) {
  const out = []
  for (const c of fs.readdirSync(dir)) {
    const src = path.join(dir, c, 'src')
    if (!fs.existsSync(src)) continue
    for (const f of rustFiles(src)) out.push({ file: path.relative(root, f), loc: linesOfCode(fs.readFileSync(f, 'utf8')) })
  }
  return out.sort((a, b) => b.loc - a.loc)
}

/** Source without comments and string contents, and without a trailing `#[cfg(test)] mod tests { ... }`. */
function code (text) {
  const cut = text.search(/^#\[cfg\(test\)\]\s*\n\s*mod tests\s*\{/m)
  if (cut >= 0) text = text.slice(0, cut)
  return text
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/\/\/.*$/gm, '')
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
}

/** Expands a `use` tree (`a::{b, c::{d as e, *}}`) into paths (arrays of segments). */
function expandUse (tree) {
  tree = tree.replace(/\s+as\s+\w+/g, '').replace(/\s+/g, '')
  const brace = tree.indexOf('{')
  if (brace < 0) return [tree.split('::').filter(Boolean)]
  const prefix = tree.slice(0, brace).split('::').filter(Boolean)
  const inner = tree.slice(brace + 1, tree.lastIndexOf('}'))
  const parts = []
  let depth = 0
  let cur = ''
  for (const ch of inner) {
    if (ch === '{') depth++
    if (ch === '}') depth--
    if (ch === ',' && depth === 0) {
      parts.push(cur)
      cur = ''
    } else cur += ch
  }
  if (cur) parts.push(cur)
  return parts.flatMap((p) => expandUse(p).map((s) => s[0] === 'self' ? prefix : [...prefix, ...s]))
}

/** The crate's modules: module path (array) -> {file, children: Set}. */
function modules (crateDir) {
  const src = path.join(crateDir, 'src')
  const top = ['lib.rs', 'main.rs'].map((f) => path.join(src, f)).find((f) => fs.existsSync(f))
  const mods = new Map()
  const walk = (modPath, file, dir) => {
    const text = code(fs.readFileSync(file, 'utf8'))
    const children = new Set()
    mods.set(modPath.join('::'), { path: modPath, file, text, children })
    for (const m of text.matchAll(/^\s*(?:#\[[^\]]*\]\s*)*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*;/gm)) {
      const name = m[1]
      const pathAttr = /#\[path\s*=\s*""\]/.test(m[0])
      if (pathAttr) continue
      const cands = [path.join(dir, `${name}.rs`), path.join(dir, name, 'mod.rs')]
      const child = cands.find((f) => fs.existsSync(f))
      if (!child) continue
      children.add(name)
      walk([...modPath, name], child, path.join(dir, name))
    }
  }
  walk([], top, src)
  return mods
}

/**
 * The file that defines what `segs` names, seen from module `from`: follows
 * modules as far as they go, then `use` re-exports of the last module.
 */
function resolve (mods, from, segs, seen = new Set()) {
  let mod = from
  let i = 0
  if (segs[0] === 'crate') {
    mod = []
    i = 1
  } else if (segs[0] === 'super' || segs[0] === 'self') {
    while (segs[i] === 'super' || segs[i] === 'self') {
      if (segs[i] === 'super') mod = mod.slice(0, -1)
      i++
    }
  } else return null
  while (i < segs.length && mods.get(mod.join('::'))?.children.has(segs[i])) {
    mod = [...mod, segs[i]]
    i++
  }
  const m = mods.get(mod.join('::'))
  if (!m) return null
  if (i < segs.length && segs[i] !== '*') {
    // An item of `m`: follow a `use` that brings it in from elsewhere in the crate.
    const key = `${m.file}#${segs[i]}`
    if (!seen.has(key)) {
      seen.add(key)
      for (const u of m.text.matchAll(/^\s*(?:pub(?:\([^)]*\))?\s+)?use\s+([^;]+);/gm)) {
        for (const p of expandUse(u[1])) {
          const name = p[p.length - 1]
          if (name !== segs[i]) continue
          const target = resolve(mods, mod, [...relative(p), ...segs.slice(i + 1)], seen)
          if (target) return target
        }
      }
    }
  }
  return m
}

/** A `use` path inside a module, as a path `resolve` understands (2018: a bare name is a child module). */
function relative (p) {
  return ['crate', 'super', 'self'].includes(p[0]) ? p : ['self', ...p]
}

/** File-level import circles of one crate: arrays of relative file names. */
function importCycles (crateDir) {
  const mods = modules(crateDir)
  const edges = new Map()
  for (const m of mods.values()) {
    const out = new Set()
    const paths = []
    for (const u of m.text.matchAll(/^\s*(?:pub(?:\([^)]*\))?\s+)?use\s+([^;]+);/gm)) paths.push(...expandUse(u[1]).map(relative))
    for (const p of m.text.matchAll(/\b(?:crate|super|self)(?:::\w+)+/g)) paths.push(p[0].split('::'))
    for (const p of paths) {
      const t = resolve(mods, m.path, p)
      if (!t || t === m) continue
      // A module naming its own descendants is structure.
      if (t.path.length > m.path.length && m.path.every((s, k) => t.path[k] === s)) continue
      out.add(t.file)
    }
    edges.set(m.file, out)
  }
  // Tarjan's strongly connected components.
  let index = 0
  const idx = new Map()
  const low = new Map()
  const stack = []
  const on = new Set()
  const cycles = []
  const visit = (v) => {
    idx.set(v, index)
    low.set(v, index++)
    stack.push(v)
    on.add(v)
    for (const w of edges.get(v) || []) {
      if (!idx.has(w)) {
        visit(w)
        low.set(v, Math.min(low.get(v), low.get(w)))
      } else if (on.has(w)) low.set(v, Math.min(low.get(v), idx.get(w)))
    }
    if (low.get(v) === idx.get(v)) {
      const comp = []
      let w
      do {
        w = stack.pop()
        on.delete(w)
        comp.push(w)
      } while (w !== v)
      if (comp.length > 1) cycles.push(comp.map((f) => path.relative(root, f)).sort())
    }
  }
  for (const v of edges.keys()) if (!idx.has(v)) visit(v)
  return cycles
}

/** The workspace's crate directories. */
function crates () {
  const dir = path.join(root, 'crates')
  return fs.readdirSync(dir).map((c) => path.join(dir, c)).filter((d) => fs.existsSync(path.join(d, 'Cargo.toml')))
}

module.exports = { sizes, importCycles, crates, linesOfCode, rustFiles }

if (require.main === module) {
  for (const s of sizes().slice(0, 10)) console.log(`${String(s.loc).padStart(5)}  ${s.file}`)
  for (const c of crates()) {
    const cycles = importCycles(c)
    console.log(`${path.relative(root, c)}: ${cycles.length} import circle(s)`)
    for (const cy of cycles) console.log(`  ${cy.join(' <-> ')}`)
  }
}
