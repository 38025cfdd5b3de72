#!/usr/bin/python3
"""libtorrent side of the ut_pex interop tests (run with Debian's /usr/bin/python3).

Builds a small swarm on loopback, all with DHT, LSD, UPnP, NAT-PMP and uTP off:

- hub     (127.0.0.2): seeds a trackerless torrent made on the fly (PEX off until seed and
                       leecher are connected: see the comment in run());
- seed    (127.0.0.3): a second seed, dialled by the hub;
- leecher (127.0.0.4): all file priorities 0 (never interested, so never timed out),
                       dialled by the hub;
- idle    (127.0.0.5): has the torrent like the leecher, but nobody tells the hub about it:
                       only a PEX message can make the hub dial it.

Prints one JSON object per line on stdout, each with "t" (seconds since start, monotonic)
and "event":
  ready{info_hash, hub, seed, leecher, idle}      swarm connected, hub has seed + leecher
  pex_dial{addr, source, outgoing}                the hub has a connection to idle, learnt by PEX
  disconnected{session, addr, error, op, message}  a peer_disconnected alert on the hub
  peer_error{session, addr, error, op, message}          a peer_error alert on the hub
  hub_peers{peers:[{addr, source, seed, client}]} answer to the "peers" command
  left{who}                                        answer to "leave seed": the seed removed the torrent
  bye{reason}                                      the harness exits (stdin closed, "quit", deadline)

Commands on stdin, one per line: "leave seed", "peers", "quit".
It exits by itself after --max-seconds, and when stdin closes.

libtorrent calls all happen on the main thread (the bindings are not safe to drive from
several threads at once), and alerts are popped from that same thread.
"""

import argparse
import json
import os
import select
import shutil
import sys
import tempfile
import time

import libtorrent as lt

T0 = time.monotonic()

HUB_IP = "127.0.0.2"
SEED_IP = "127.0.0.3"
LEECHER_IP = "127.0.0.4"
IDLE_IP = "127.0.0.5"

# Substrings of libtorrent's PEX error messages (src/error_code.cpp), for the harness's own
# summary line; the Rust test checks the raw messages itself too.
PEX_ERRORS = ("pex message", "too frequent", "possible attack")


def emit(event, **fields):
    line = {"t": round(time.monotonic() - T0, 4), "event": event}
    line.update(fields)
    print(json.dumps(line), flush=True)


def op_name(op):
    try:
        return lt.operation_name(op)
    except Exception:  # older bindings: no name for it
        return str(op)


def fmt_addr(ip, port):
    return "[%s]:%d" % (ip, port) if ":" in ip else "%s:%d" % (ip, port)


def make_session(ip):
    settings = {
        "listen_interfaces": "%s:0" % ip,
        # Dial from the session's own IP too, so that every peer sees each session at one
        # address (without it, outgoing connections come from 127.0.0.1).
        "outgoing_interfaces": ip,
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        # TCP only: keeps the flags libtorrent sends deterministic (no 0x04 uTP bit).
        "enable_incoming_utp": False,
        "enable_outgoing_utp": False,
        "allow_multiple_connections_per_ip": True,
        "close_redundant_connections": False,
        "alert_mask": lt.alert_category.error
        | lt.alert_category.peer
        | lt.alert_category.connect
        | lt.alert_category.status,
    }
    return lt.session(settings)


def make_torrent(data_dir):
    """A 256 KiB single-file v1 torrent (16 KiB pieces) without trackers."""
    name = "interop.bin"
    with open(os.path.join(data_dir, name), "wb") as f:
        f.write(os.urandom(256 * 1024))
    fs = lt.file_storage()
    lt.add_files(fs, os.path.join(data_dir, name))
    ct = lt.create_torrent(fs, 16 * 1024, flags=lt.create_torrent.v1_only)
    ct.set_creator("ut_pex interop harness")
    lt.set_piece_hashes(ct, data_dir)
    return lt.torrent_info(lt.bdecode(lt.bencode(ct.generate())))


def add(session, info, save_path, want_nothing=False, pex_off=False):
    params = lt.add_torrent_params()
    params.ti = info
    params.save_path = save_path
    if pex_off:
        params.flags |= lt.torrent_flags.disable_pex
    if want_nothing:
        params.file_priorities = [0] * info.num_files()
    return session.add_torrent(params)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--max-seconds", type=float, default=240.0)
    args = parser.parse_args()
    deadline = T0 + args.max_seconds

    tmp = tempfile.mkdtemp(prefix="ut_pex_interop_lt_")
    try:
        run(tmp, deadline)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(tmp, deadline):
    seed_dir = os.path.join(tmp, "seed")
    os.mkdir(seed_dir)
    info = make_torrent(seed_dir)
    info_hash = str(info.info_hashes().v1)

    sessions = {
        "hub": make_session(HUB_IP),
        "seed": make_session(SEED_IP),
        "leecher": make_session(LEECHER_IP),
        "idle": make_session(IDLE_IP),
    }
    ips = {"hub": HUB_IP, "seed": SEED_IP, "leecher": LEECHER_IP, "idle": IDLE_IP}
    handles = {
        "hub": add(sessions["hub"], info, seed_dir, pex_off=True),
        "seed": add(sessions["seed"], info, seed_dir),
        "leecher": add(sessions["leecher"], info, os.path.join(tmp, "leecher"), True),
        "idle": add(sessions["idle"], info, os.path.join(tmp, "idle"), True),
    }

    def addr_of(who):
        return fmt_addr(ips[who], sessions[who].listen_port())

    def pump():
        for who, session in sessions.items():
            for alert in session.pop_alerts():
                on_alert(who, alert)

    def on_alert(who, alert):
        if who != "hub":
            return
        # Both alerts carry the same fields; only the event name differs.
        if isinstance(alert, lt.peer_disconnected_alert):
            event = "disconnected"
        elif isinstance(alert, lt.peer_error_alert):
            event = "peer_error"
        else:
            event = None
        if event is not None:
            ip, port = alert.ip
            emit(
                event,
                session=who,
                addr=fmt_addr(ip, port),
                error=alert.error.message(),
                op=op_name(alert.op),
                message=alert.message(),
            )

    def hub_peers():
        return handles["hub"].get_peer_info()

    def wait_until(cond, what, limit=20.0):
        until = min(time.monotonic() + limit, deadline)
        while time.monotonic() < until:
            pump()
            if cond():
                return
            time.sleep(0.02)
        emit("bye", reason="timeout waiting for " + what)
        sys.exit(3)

    def seeding(who):
        return handles[who].status().is_seeding

    wait_until(lambda: seeding("hub") and seeding("seed"), "the seeds to check the data")
    hub_handle = handles["hub"]
    hub_handle.connect_peer((SEED_IP, sessions["seed"].listen_port()))
    hub_handle.connect_peer((LEECHER_IP, sessions["leecher"].listen_port()))

    def hub_has(*who_list):
        found = set()
        for p in hub_peers():
            if p.flags & lt.peer_info.handshake or p.flags & lt.peer_info.connecting:
                continue
            found.add(p.ip[0])
        return all(ips[w] in found for w in who_list)

    wait_until(lambda: hub_has("seed", "leecher"), "the hub to connect seed and leecher")
    # libtorrent rebuilds one torrent-wide PEX diff every 60 s, and its very first rebuild
    # attempt (about 1 s after the torrent is added) restarts that 60 s timer even when the
    # torrent has no peers yet, recording an empty "previous" set: a peer leaving in the
    # first minute would then never be reported dropped, and the first real diff would come
    # two minutes in. So the hub's PEX stays off (its tick returns before touching the timer)
    # until seed and leecher are connected, and the first rebuild records both of them.
    hub_handle.unset_flags(lt.torrent_flags.disable_pex)
    settle = time.monotonic() + 1.5
    while time.monotonic() < settle:
        pump()
        time.sleep(0.02)
    emit(
        "ready",
        info_hash=info_hash,
        hub=addr_of("hub"),
        seed=addr_of("seed"),
        leecher=addr_of("leecher"),
        idle=addr_of("idle"),
    )

    idle_seen = False
    stdin_open = True
    while time.monotonic() < deadline:
        pump()
        if not idle_seen:
            for p in hub_peers():
                if p.ip[0] == IDLE_IP:
                    idle_seen = True
                    emit(
                        "pex_dial",
                        addr=fmt_addr(p.ip[0], p.ip[1]),
                        source=int(p.source),
                        pex=bool(p.source & lt.peer_info.pex),
                        outgoing=bool(p.flags & lt.peer_info.outgoing_connection),
                    )
        if stdin_open:
            ready, _, _ = select.select([sys.stdin], [], [], 0.01)
        else:
            time.sleep(0.01)
            ready = []
        if not ready:
            continue
        line = sys.stdin.readline()
        if line == "":
            emit("bye", reason="stdin closed")
            return
        command = line.strip()
        if command == "leave seed":
            sessions["seed"].remove_torrent(handles["seed"])
            emit("left", who="seed", addr=addr_of("seed"))
        elif command == "peers":
            emit(
                "hub_peers",
                peers=[
                    {
                        "addr": fmt_addr(p.ip[0], p.ip[1]),
                        "source": int(p.source),
                        "seed": bool(p.flags & lt.peer_info.seed),
                        "client": p.client.decode("utf-8", "replace")
                        if isinstance(p.client, bytes)
                        else p.client,
                    }
                    for p in hub_peers()
                ],
            )
        elif command == "quit":
            emit("bye", reason="quit")
            return
        elif command:
            emit("unknown_command", command=command)
    emit("bye", reason="deadline")


if __name__ == "__main__":
    main()
