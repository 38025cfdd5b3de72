//! A shard: a share of the nodes with its own event queue, run on its own thread for one
//! window of protocol time at a time.
//!
//! Why this is deterministic: every link's one-way latency is at least [`MIN_LATENCY`], so
//! nothing a node does in a window `[t, t + MIN_LATENCY)` reaches another node before the
//! window ends. Within a window each shard pops its own events in key order; what it sends
//! to other shards waits in `out` until the window ends. The few events that touch two
//! nodes at once (a dial's arrival, a session's end, an attack, a minute's measurement) are
//! the world's, handled between windows. An event's key is `(time, seq)` with `seq` taken
//! from who pushed it ([`seq`]), so the order is the same on any number of threads.

use std::time::{Duration, Instant};

use bytes::Bytes;
use ut_pex::Config;

use crate::node::Node;
use crate::params::Params;
use crate::payloads::Payloads;
use crate::sched::Queue;
use crate::trace::Trace;
use crate::world::{Counts, Ev};

/// The shortest one-way latency of any link (5 ms, the low end of `link_latency`).
pub const MIN_LATENCY: u64 = 5_000_000;
/// The pusher of the world's own events in [`seq`] (above every uid).
pub const WORLD: u32 = (1 << 23) - 1;

/// An event's key: its time, then its `seq`.
pub type Key = (u64, u64);

/// The `seq` of the `counter`-th event pushed by `pusher` (a uid or [`WORLD`]). The low bit
/// is left for the second end of a connection, opened under its dial's key.
pub fn seq(pusher: u32, counter: u32) -> u64 {
    (u64::from(pusher) << 33) | (u64::from(counter) << 1)
}

/// What every shard reads and none writes during a window.
#[derive(Debug)]
pub struct Env {
    pub(crate) p: Params,
    pub(crate) base: Instant,
    pub(crate) handshake: Vec<u8>,
    pub(crate) config: Config,
    /// uid → slot, `NONE` once the node left.
    pub(crate) slot_of: Vec<u32>,
    /// Shards: slot `s` lives in shard `s % shards` at index `s / shards`.
    pub(crate) shards: usize,
}

const NONE: u32 = u32::MAX;

impl Env {
    /// The slot of a live node.
    pub(crate) fn slot(&self, uid: u32) -> Option<usize> {
        let slot = *self.slot_of.get(uid as usize)?;
        (slot != NONE).then_some(slot as usize)
    }

    /// The node `uid` is gone.
    pub(crate) fn forget(&mut self, uid: u32) {
        if let Some(s) = self.slot_of.get_mut(uid as usize) {
            *s = NONE;
        }
    }

    /// The shard and index of `slot`.
    pub(crate) fn place(&self, slot: usize) -> (usize, usize) {
        (slot % self.shards, slot / self.shards)
    }

    /// Virtual time `now` as the crate sees it.
    pub(crate) fn instant(&self, now: u64) -> Instant {
        self.base + Duration::from_nanos(now)
    }

    /// An `Instant` the crate gave back, as virtual ns (never before `now`).
    pub(crate) fn ns(&self, now: u64, at: Instant) -> u64 {
        let ns = at.saturating_duration_since(self.base).as_nanos();
        u64::try_from(ns).unwrap_or(u64::MAX).max(now)
    }
}

/// An event for another shard or for the world, sent at the window's end.
#[derive(Debug)]
pub struct Out {
    pub(crate) at: u64,
    pub(crate) seq: u64,
    pub(crate) event: Ev,
    /// A `Deliver`'s payload, put in the receiving shard's [`Payloads`].
    pub(crate) payload: Option<Bytes>,
}

/// What node `uid` sent while handling the event `key`.
#[derive(Debug)]
pub struct TraceEntry {
    pub(crate) key: Key,
    pub(crate) uid: u32,
    pub(crate) digest: Trace,
}

/// A share of the nodes and their pending events.
#[derive(Debug, Default)]
pub struct Shard {
    pub(crate) index: usize,
    pub(crate) nodes: Vec<Node>,
    pub(crate) queue: Queue<Ev>,
    /// The payloads of queued `Deliver`s.
    pub(crate) payloads: Payloads,
    pub(crate) counts: Counts,
    /// The time and key of the event being handled.
    pub(crate) now: u64,
    pub(crate) event: Key,
    /// What the nodes sent, per event, in the order handled.
    pub(crate) trace: Vec<TraceEntry>,
    pub(crate) out: Vec<Out>,
}

impl Shard {
    /// Handles every event with a key below `bound`.
    pub(crate) fn run_until(&mut self, env: &Env, bound: Key) {
        while let Some((key, _)) = self.queue.peek() {
            if key >= bound {
                return;
            }
            let Some((at, event)) = self.queue.pop() else {
                return;
            };
            self.now = at;
            self.event = key;
            self.handle(env, event);
        }
    }

    /// Events pending with a time before `at` (at least: a cheap look at the near buckets).
    pub(crate) fn pending_before(&self, at: u64) -> usize {
        self.queue.len_before(at)
    }

    fn handle(&mut self, env: &Env, event: Ev) {
        match event {
            Ev::Wake(uid) => self.wake(env, uid),
            Ev::Deliver { to, from, payload } => {
                if let Some(payload) = self.payloads.take(payload) {
                    self.deliver(env, to, from, &payload);
                }
            }
            Ev::DialFailed { from, addr } => self.dial_failed(env, from, addr),
            Ev::Connected {
                node,
                peer,
                outgoing,
            } => self.connected(env, node, peer, outgoing),
            // The world's own events never wait in a shard.
            Ev::Dial { .. } | Ev::Leave(_) | Ev::Minute(_) | Ev::Attack(_) => {}
        }
    }

    /// The index of live node `uid` in this shard.
    pub(crate) fn local(&self, env: &Env, uid: u32) -> Option<usize> {
        let (shard, local) = env.place(env.slot(uid)?);
        (shard == self.index).then_some(local)
    }

    /// The next `seq` of the node at `local`.
    pub(crate) fn next_seq(&mut self, local: usize) -> u64 {
        let node = &mut self.nodes[local];
        node.pushes = node.pushes.wrapping_add(1);
        seq(node.uid, node.pushes)
    }

    /// The node at `local` sends `payload` to node `to`, arriving at `at`.
    pub(crate) fn send(&mut self, env: &Env, local: usize, to: u32, at: u64, payload: Bytes) {
        let Some(slot) = env.slot(to) else {
            // Gone: it would be dropped on arrival.
            return;
        };
        let seq = self.next_seq(local);
        let from = self.nodes[local].uid;
        if env.place(slot).0 == self.index {
            let payload = self.payloads.put(payload);
            self.queue.push(at, seq, Ev::Deliver { to, from, payload });
        } else {
            let event = Ev::Deliver {
                to,
                from,
                payload: 0,
            };
            let payload = Some(payload);
            self.out.push(Out {
                at,
                seq,
                event,
                payload,
            });
        }
    }

    /// The node at `local` pushes an event for the world (a dial) at `at`.
    pub(crate) fn send_world(&mut self, local: usize, at: u64, event: Ev) {
        let seq = self.next_seq(local);
        self.out.push(Out {
            at,
            seq,
            event,
            payload: None,
        });
    }

    /// Where what node `uid` sends during this event is hashed.
    pub(crate) fn trace_of(&mut self, uid: u32) -> &mut Trace {
        let key = self.event;
        let fresh = !matches!(self.trace.last(), Some(e) if e.key == key && e.uid == uid);
        if fresh {
            self.trace.push(TraceEntry {
                key,
                uid,
                digest: Trace::default(),
            });
        }
        let last = self.trace.len() - 1;
        &mut self.trace[last].digest
    }
}
