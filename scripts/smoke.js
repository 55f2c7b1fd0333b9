'use strict'
// Release check (.github/workflows/release.yml): on the platform it was built
// for, the generated loader finds the addon and the addon works. No sockets.
const path = require('node:path')
const binding = require('../binding.js')

const out = JSON.stringify(binding.decodePayload(binding.encodePayload(['hi', { n: 1 }])))
if (out !== '["hi",{"n":1}]') throw new Error(`payload round trip gave ${out}`)
const file = Object.keys(require.cache).find((k) => k.endsWith('.node'))
console.log(`ok ${process.platform}-${process.arch} node ${process.version}: ${path.basename(file)} ${out}`)
