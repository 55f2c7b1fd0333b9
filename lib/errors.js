'use strict'
// The one way the JS face makes an Error with a stable `code` (index.js,
// lib/options.js, lib/patterns.js, lib/requests.js).

/** A `new Ctor(message)` with `code` set. */
function codedError (Ctor, code, message) {
  const err = new Ctor(message)
  err.code = code
  return err
}

module.exports = { codedError }
