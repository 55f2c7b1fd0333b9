'use strict'
// Pattern and any listeners (onPattern/offPattern/onAny/offAny): the matching
// rule from the table Rust's tests read too, the listener semantics on local
// emits (no socket), and received events over real multicast (in the netns).
const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const { execFileSync } = require('node:child_process')
const { inPrivateNetns } = require('../scripts/netns.js')
const { make, port, next, root } = require('./helpers.js')
const binding = require('../binding.js')
const { compile, matchTokens } = require('../lib/patterns.js')

// One table for both matchers (crates/eventcast/src/pattern.rs's tests read it too).
const TABLE = JSON.parse(fs.readFileSync(path.join(root, 'crates', 'eventcast', 'tests', 'fixtures', 'patterns.json'), 'utf8'))
const NETNS = inPrivateNetns() ? false : 'opens sockets: run inside a private network namespace (node scripts/netns.js node --test ...)'

/** A stopped instance: emit() delivers locally only, which is what these tests look at. */
function local () {
  return make({ port: port() })
}

test('the shared table: every case through onPattern and a local emit', () => {
  assert.ok(TABLE.matches.length >= 30)
  const ec = local()
  ec.on('error', () => {}) // the table has an 'error' name: emit('error') without one would throw
  for (const [pattern, name, expected] of TABLE.matches) {
    const seen = []
    const fn = (...args) => seen.push(args)
    ec.onPattern(pattern, fn)
    ec.emit(name, 1, 'x')
    ec.offPattern(pattern, fn)
    assert.deepEqual(seen, expected ? [[name, 1, 'x']] : [], `${JSON.stringify(pattern)} against ${JSON.stringify(name)}`)
  }
})

test('the shared table: the general token matcher and each compiled shortcut agree', () => {
  for (const [pattern, name, expected] of TABLE.matches) {
    const tokens = binding.patternTokens(pattern)
    assert.equal(matchTokens(tokens, name), expected, `matchTokens ${pattern} ${name}`)
    assert.equal(compile(tokens)(name), expected, `compile ${pattern} ${name}`)
  }
  for (const [pattern, tokens] of TABLE.tokens) assert.deepEqual(binding.patternTokens(pattern), tokens, pattern)
})

test('random names: the JS matchers agree with the rule written the obvious way', () => {
  // As Rust's proptest does for its matcher: split both, compare token lists.
  const reference = (p, n) => {
    const go = (pt, nt) => pt.length === 0 ? nt.length === 0
      : pt[0] === '>' ? nt.length > 0
        : nt.length > 0 && (pt[0] === '*' || pt[0] === nt[0]) && go(pt.slice(1), nt.slice(1))
    return go(p.split('.'), n.split('.'))
  }
  const patterns = [...new Set(TABLE.matches.map((c) => c[0])), 'a.*.>', 'b.>', '*.a.*']
  let seed = 25
  const rand = (k) => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % k }
  const alphabet = ['a', 'b', '.', '*', '>', 'é']
  for (const pattern of patterns) {
    const tokens = binding.patternTokens(pattern)
    const fast = compile(tokens)
    for (let i = 0; i < 500; i++) {
      let name = ''
      for (let k = rand(9); k > 0; k--) name += alphabet[rand(alphabet.length)]
      const want = reference(pattern, name)
      assert.equal(matchTokens(tokens, name), want, `${pattern} ${name}`)
      assert.equal(fast(name), want, `${pattern} ${name}`)
    }
  }
})

test('invalid patterns: TypeError with code EPATTERN, from onPattern and offPattern; nothing registered', () => {
  const ec = local()
  const fn = () => assert.fail('never registered')
  for (const pattern of TABLE.invalid) {
    for (const method of ['onPattern', 'offPattern']) {
      assert.throws(() => ec[method](pattern, fn), (err) => err instanceof TypeError && err.code === 'EPATTERN' &&
        err.message.includes('invalid pattern'), `${method}(${JSON.stringify(pattern)})`)
    }
  }
  for (const bad of [undefined, null, 5, /a/, ['a'], Symbol('a')]) {
    assert.throws(() => ec.onPattern(bad, fn), { name: 'TypeError', code: 'EPATTERN' }, String(bad))
  }
  // Bounded: 1024 bytes of UTF-8.
  ec.onPattern('a'.repeat(1024), fn).offPattern('a'.repeat(1024))
  assert.throws(() => ec.onPattern('a'.repeat(1025), fn), (err) => err.code === 'EPATTERN' && err.message.length < 200)
  assert.throws(() => ec.onPattern('€'.repeat(342), fn), { code: 'EPATTERN' })
  // Listeners must be functions.
  assert.throws(() => ec.onPattern('a.*', 'nope'), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' })
  assert.throws(() => ec.onAny(null), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' })
})

test('plain on() keeps its 0.1.x meaning: on("a.*") is the literal name', () => {
  const ec = local()
  const literal = []
  const byPattern = []
  ec.on('a.*', (...args) => literal.push(args))
  ec.onPattern('a.*', (...args) => byPattern.push(args))
  ec.emit('a.b', 1)
  ec.emit('a.*', 2)
  assert.deepEqual(literal, [[2]])
  assert.deepEqual(byPattern, [['a.b', 1], ['a.*', 2]])
})

test('order: named listeners first, then pattern and any listeners in registration order; chainable', () => {
  const ec = local()
  const calls = []
  const r = ec
    .onAny((name) => calls.push(`any1 ${name}`))
    .onPattern('x.>', (name) => calls.push(`x.> ${name}`))
    .onPattern('*.y', (name) => calls.push(`*.y ${name}`))
    .onAny((name) => calls.push(`any2 ${name}`))
  assert.equal(r, ec)
  ec.on('x.y', () => calls.push('named'))
  assert.equal(ec.emit('x.y'), true)
  assert.deepEqual(calls, ['named', 'any1 x.y', 'x.> x.y', '*.y x.y', 'any2 x.y'])
  calls.length = 0
  ec.emit('z.y', 'arg')
  assert.deepEqual(calls, ['any1 z.y', '*.y z.y', 'any2 z.y'])
})

test('emit() returns true when only pattern listeners ran, false when nothing did; names are strings', () => {
  const ec = local()
  const seen = []
  ec.onPattern('7', (...args) => seen.push(args))
  assert.equal(ec.emit('nobody'), false)
  assert.equal(ec.emit(7, 'seven'), true)
  assert.deepEqual(seen, [['7', 'seven']], 'a number name is matched, and passed, as the string it travels as')
  assert.equal(ec.emit(Symbol('s')), false, 'symbols stay EventEmitter-only')
})

test('offPattern removes one registration (the last), or all of a pattern; offAny one or all', () => {
  const ec = local()
  const calls = []
  const f = (name) => calls.push(`f ${name}`)
  const g = (name) => calls.push(`g ${name}`)
  ec.onPattern('a.*', f).onPattern('a.*', g).onPattern('a.*', f).onPattern('a.>', f).onAny(f).onAny(g).onAny(f)
  assert.equal(ec.offPattern('a.*', f), ec)
  ec.emit('a.b')
  assert.deepEqual(calls, ['f a.b', 'g a.b', 'f a.b', 'f a.b', 'g a.b', 'f a.b'])
  calls.length = 0
  ec.offPattern('a.*', () => {}) // not registered: nothing changes
  ec.offPattern('b.*', f) // never used: nothing changes
  ec.offPattern('a.*') // every a.* registration
  ec.emit('a.b')
  assert.deepEqual(calls, ['f a.b', 'f a.b', 'g a.b', 'f a.b'])
  calls.length = 0
  assert.equal(ec.offAny(f), ec) // the last onAny(f)
  ec.emit('a.b')
  assert.deepEqual(calls, ['f a.b', 'f a.b', 'g a.b'])
  calls.length = 0
  ec.offAny()
  ec.emit('a.b')
  assert.deepEqual(calls, ['f a.b'], 'only the a.> registration is left')
  ec.offPattern('a.>', f)
  ec.emit('a.b')
  assert.deepEqual(calls, ['f a.b'])
})

test('a listener added or removed during a delivery takes effect from the next event', () => {
  const ec = local()
  const calls = []
  const late = (name) => calls.push(`late ${name}`)
  const second = (name) => calls.push(`second ${name}`)
  ec.onAny((name) => {
    calls.push(`first ${name}`)
    ec.onAny(late)
    ec.offAny(second)
  })
  ec.onAny(second)
  ec.emit('e1')
  ec.emit('e2')
  assert.deepEqual(calls, ['first e1', 'second e1', 'first e2', 'late e2'])
})

test('lifecycle and reserved events never reach pattern or any listeners', () => {
  const ec = local()
  const seen = []
  ec.onAny((name) => seen.push(name)).onPattern('>', (name) => seen.push(`> ${name}`)).onPattern('*', (name) => seen.push(`* ${name}`))
  ec.on('newListener', () => {}) // itself a reserved event
  for (const name of binding.reservedEvents()) {
    ec.on(name, () => {})
    ec.emit(name, { sender: 'x', count: 1 })
  }
  ec.emit('app')
  assert.deepEqual(seen, ['app', '> app', '* app'])
})

test('exceptions on a local emit propagate from emit(), like EventEmitter listeners', () => {
  const ec = local()
  const calls = []
  ec.onAny(() => { calls.push('any1'); throw new Error('pattern bug') })
  ec.onAny(() => calls.push('any2'))
  assert.throws(() => ec.emit('e'), /pattern bug/)
  assert.deepEqual(calls, ['any1'], 'a throw ends the delivery, as in EventEmitter#emit')
  calls.length = 0
  ec.on('f', () => { throw new Error('named bug') })
  assert.throws(() => ec.emit('f'), /named bug/)
  assert.deepEqual(calls, [], 'pattern listeners come after the named ones')
  // 'error' keeps EventEmitter's rule: with no 'error' listener it throws, pattern listeners or not.
  ec.offAny()
  const errors = []
  ec.onAny((name, err) => errors.push([name, err.message]))
  assert.throws(() => ec.emit('error', new Error('unhandled')), /unhandled/)
  ec.on('error', () => {})
  ec.emit('error', new Error('handled'))
  assert.deepEqual(errors, [['error', 'handled']])
})

test('no pattern listener in the process: one check of a module constant on the hot paths', () => {
  const { kPatterns, inUse } = require('../lib/patterns.js')
  const ec = local()
  const other = local()
  const before = inUse.count
  assert.equal(ec[kPatterns], null)
  assert.ok(!Object.prototype.hasOwnProperty.call(ec, kPatterns), 'the prototype holds the null')
  ec.onAny(() => {}).onPattern('a.*', () => {})
  other.onAny(() => {})
  assert.equal(ec[kPatterns].length, 2)
  assert.equal(inUse.count, before + 2, 'counted per instance, not per listener')
  ec.offAny()
  assert.equal(inUse.count, before + 2)
  ec.offPattern('a.*')
  assert.equal(ec[kPatterns], null, 'back to null once the last is removed')
  assert.equal(inUse.count, before + 1)
  other.offAny(() => {}) // not registered: no change
  assert.equal(inUse.count, before + 1)
  other.offAny()
  assert.equal(inUse.count, before)
  // The hot paths look at the counter first, and at the instance only when it is not zero.
  const src = fs.readFileSync(path.join(root, 'index.js'), 'utf8')
  for (const [start, end] of [['\n  emit (name, ...args) {', '\n  }\n'], ['\n  _onBatch (batch) {', '\n  }\n']]) {
    const body = src.slice(src.indexOf(start), src.indexOf(end, src.indexOf(start)))
    const lines = body.split('\n').filter((l) => l.includes('kPatterns'))
    assert.ok(lines.length > 0, `${start.trim()} reaches the pattern listeners`)
    for (const l of lines) assert.match(l, /patternsInUse\.count (!==|===) 0 (&&|\|\|) this\[kPatterns\] (!==|===) null/, l)
  }
})

test('received events over multicast: matching ones, after the named listeners, with their arguments', { skip: NETNS }, async () => {
  const p = port()
  const a = make({ port: p })
  const b = make({ port: p })
  const seen = []
  b.on('orders.eu.created', (...args) => seen.push(['named', ...args]))
  b.onPattern('orders.*.created', (...args) => seen.push(['created', ...args]))
    .onPattern('orders.>', (name) => seen.push(['orders', name]))
    .onAny((name) => seen.push(['any', name]))
  b.onPattern('never.*', () => assert.fail('never matches'))
  await Promise.all([a.start(), b.start()])
  const done = next(b, 'done', 5000)
  a.emit('orders.eu.created', { id: 1 }, [2], 'three')
  a.emit('orders.eu.paid', 4)
  a.emit('audit')
  a.emit('orders.created')
  a.emit('done')
  await done
  assert.deepEqual(seen, [
    ['named', { id: 1 }, [2], 'three'],
    ['created', 'orders.eu.created', { id: 1 }, [2], 'three'],
    ['orders', 'orders.eu.created'],
    ['any', 'orders.eu.created'],
    ['orders', 'orders.eu.paid'],
    ['any', 'orders.eu.paid'],
    ['any', 'audit'],
    ['orders', 'orders.created'],
    ['any', 'orders.created'],
    ['any', 'done']
  ])
  // The sender's own pattern listeners see its emits once, locally.
  const own = []
  a.onAny((name) => own.push(name))
  a.emit('mine')
  await next(b, 'mine', 5000)
  assert.deepEqual(own, ['mine'])
})

test('received: lifecycle events and a received "error" as it was sent', { skip: NETNS }, async () => {
  const p = port()
  const a = make({ port: p })
  const b = make({ port: p, presence: { interval: 200, timeout: 1000 } })
  a.on('error', () => {}) // emit('error') locally needs one, as with any EventEmitter
  const seen = []
  b.onAny((name, ...args) => seen.push([name, ...args]))
  b.on('error', () => {}) // a received 'error' reaches 'error' listeners as EREMOTE; pattern listeners get it raw
  await b.start()
  await a.start()
  await next(b, 'peerUp', 5000)
  a.emit('error', 'remote trouble')
  a.emit('done')
  await next(b, 'done', 5000)
  const down = next(b, 'peerDown', 5000)
  await a.stop()
  await down
  await b.stop()
  assert.deepEqual(seen, [['error', 'remote trouble'], ['done']], 'no start, stop, peerUp, peerDown')
})

test('throwing listeners on received events: uncaught, the later ones of their kind skipped, the batch goes on', { skip: NETNS }, () => {
  // In a child: node:test fails any test that sees an uncaught exception.
  const script = `
    const Eventcast = require(${JSON.stringify(require.resolve('..'))})
    const p = ${port()}
    const a = Eventcast(p), b = Eventcast(p)
    const calls = [], uncaught = []
    process.on('uncaughtException', (e) => uncaught.push(e.message))
    b.on('boom', (i) => { calls.push('named' + i); if (i === 1) throw new Error('named bug') })
    b.on('boom', (i) => calls.push('named2 ' + i))
    b.onAny((name, i) => { calls.push('any1 ' + name + i); if (i === 0) throw new Error('pattern bug') })
    b.onAny((name, i) => calls.push('any2 ' + name + i))
    b.on('after', () => setTimeout(async () => {
      await a.stop(); await b.stop()
      console.log(JSON.stringify({ calls, uncaught }))
    }, 20))
    Promise.all([a.start(), b.start()]).then(() => { a.emit('boom', 0); a.emit('boom', 1); a.emit('after') })
  `
  const out = execFileSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 10000 })
  assert.deepEqual(JSON.parse(out.trim()), {
    calls: [
      'named0', 'named2 0', 'any1 boom0', // the pattern listener's throw ends the pattern listeners
      'named1', 'any1 boom1', 'any2 boom1', // the named listener's throw ends the named ones only
      'any1 afterundefined', 'any2 afterundefined'
    ],
    uncaught: ['pattern bug', 'named bug']
  })
})
