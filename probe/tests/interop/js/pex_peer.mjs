// JS side of the ut_pex interop tests: npm `ut_pex` on a `bittorrent-protocol` wire.
//
// Listens on --host (default 127.0.0.1), port 0, and serves one torrent (--info-hash, hex):
// it answers the BitTorrent handshake of anyone asking for that info-hash, with ut_pex in
// its extension handshake, and never unchokes (requests are ignored).
//
//   node pex_peer.mjs --info-hash HEX [--host IP] [--max-seconds N]
//        [--add ADDR/FLAGS]... [--send-empty]
//
// With --add, once the remote's extension handshake arrives it queues each peer with
// addPeer/addPeer6 (FLAGS hex, as the flag byte) and calls `_sendMessage()` at once (instead
// of waiting for the module's 65 s timer), then with --send-empty sends one more message,
// with all six keys empty, 100 ms later.
//
// Prints one JSON object per line, each with "t" (seconds since start) and "event":
//   listening{host, port}        ready for connections
//   connection{remote}           a TCP connection came in
//   handshake{info_hash, ok}     the remote's BitTorrent handshake
//   ext_handshake{m, p, v}       the remote's BEP 10 handshake (m: names -> ids)
//   sent{message}                a ut_pex message went out (1 = peers, 2 = empty)
//   peer{addr, flags}            ut_pex 'peer' event, flags folded back into the byte
//   dropped{addr}                ut_pex 'dropped' event
//   warning{message}             ut_pex 'warning' event (e.g. the too-frequent disconnect)
//   closed{remote}               the connection ended
//   bye{reason}                  the script exits (deadline or SIGTERM)

import net from 'node:net'
import crypto from 'node:crypto'
import Protocol from 'bittorrent-protocol'
import utPex from 'ut_pex'

const FLAG_BITS = {
  prefersEncryption: 0x01,
  isSender: 0x02,
  supportsUtp: 0x04,
  supportsUtHolepunch: 0x08,
  isReachable: 0x10
}

const t0 = process.hrtime.bigint()
function emit (event, fields = {}) {
  const t = Number(process.hrtime.bigint() - t0) / 1e9
  process.stdout.write(JSON.stringify({ t: Math.round(t * 10000) / 10000, event, ...fields }) + '\n')
}

function parseArgs (argv) {
  const args = { host: '127.0.0.1', maxSeconds: 200, add: [], sendEmpty: false, infoHash: null }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a === '--info-hash') args.infoHash = argv[++i].toLowerCase()
    else if (a === '--host') args.host = argv[++i]
    else if (a === '--max-seconds') args.maxSeconds = Number(argv[++i])
    else if (a === '--add') args.add.push(argv[++i])
    else if (a === '--send-empty') args.sendEmpty = true
    else throw new Error('unknown argument: ' + a)
  }
  if (!args.infoHash || !/^[0-9a-f]{40}$/.test(args.infoHash)) {
    throw new Error('--info-hash HEX (40 hex digits) is required')
  }
  return args
}

function flagsObject (byte) {
  const flags = {}
  for (const [name, bit] of Object.entries(FLAG_BITS)) flags[name] = (byte & bit) !== 0
  return flags
}

function flagsByte (flags) {
  let byte = 0
  for (const [name, bit] of Object.entries(FLAG_BITS)) if (flags[name]) byte |= bit
  return byte
}

function text (value) {
  if (value === undefined || value === null) return null
  if (typeof value === 'number' || typeof value === 'string') return value
  return Buffer.from(value).toString('utf8')
}

const args = parseArgs(process.argv.slice(2))
const peerId = Buffer.concat([Buffer.from('-JS0000-'), crypto.randomBytes(12)]).toString('hex')

function serve (socket) {
  const remote = `${socket.remoteAddress}:${socket.remotePort}`
  emit('connection', { remote })
  const wire = new Protocol()
  socket.pipe(wire).pipe(socket)
  socket.on('error', err => emit('socket_error', { remote, message: err.message }))
  socket.on('close', () => emit('closed', { remote }))
  wire.on('error', err => emit('wire_error', { remote, message: err.message }))

  wire.use(utPex())
  wire.ut_pex.on('peer', (addr, flags) => emit('peer', { addr, flags: flagsByte(flags) }))
  wire.ut_pex.on('dropped', addr => emit('dropped', { addr }))
  wire.ut_pex.on('warning', err => emit('warning', { message: err.message }))

  wire.on('handshake', (infoHash, remotePeerId, extensions) => {
    const ok = infoHash === args.infoHash
    emit('handshake', { info_hash: infoHash, ok, extended: !!extensions.extended })
    if (!ok) {
      wire.destroy()
      return
    }
    wire.handshake(infoHash, peerId, { dht: false })
  })

  wire.on('extended', (ext, obj) => {
    if (ext !== 'handshake') return
    const m = {}
    for (const [name, id] of Object.entries(obj.m || {})) m[name] = id
    emit('ext_handshake', { m, p: obj.p ?? null, v: text(obj.v) })
    if (args.add.length === 0) return
    for (const spec of args.add) {
      const [addr, flagsHex] = spec.split('/')
      const flags = flagsObject(parseInt(flagsHex || '0', 16))
      if (addr.startsWith('[')) wire.ut_pex.addPeer6(addr, flags)
      else wire.ut_pex.addPeer(addr, flags)
    }
    wire.ut_pex._sendMessage()
    emit('sent', { message: 1, peers: args.add })
    if (args.sendEmpty) {
      setTimeout(() => {
        if (wire.destroyed) return
        wire.ut_pex._sendMessage()
        emit('sent', { message: 2, peers: [] })
      }, 100)
    }
  })
}

const server = net.createServer(serve)
server.listen(0, args.host, () => {
  emit('listening', { host: args.host, port: server.address().port })
})

function bye (reason) {
  emit('bye', { reason })
  process.exit(0)
}
setTimeout(() => bye('deadline'), args.maxSeconds * 1000)
process.on('SIGTERM', () => bye('SIGTERM'))
