//! The loop: the world's events one at a time, and between them windows of
//! [`MIN_LATENCY`] in which every shard runs its own events, on its own thread (see
//! [`crate::shard`] for why that is deterministic).

use std::sync::Mutex;

use crate::shard::{Key, Shard, MIN_LATENCY};
use crate::world::{Ev, World, MINUTE};

/// A window runs its shards on threads when it holds at least this many events: below it,
/// handing work to another thread costs more than it saves.
const PARALLEL_EVENTS: usize = 8;

impl World {
    /// Runs every event up to the last protocol minute; `progress` hears each minute.
    pub fn run(&mut self, mut progress: impl FnMut(u32)) {
        self.run_windows(&mut progress);
        self.counts = self.total_counts();
    }

    /// The loop: the world's next event when it is the earliest of all; else the window of
    /// [`MIN_LATENCY`] from the earliest event, up to the world's next event that is not a
    /// dial (the dials in it are decided first, see [`World::dial_arrives`]).
    fn run_windows(&mut self, mut progress: impl FnMut(u32)) {
        loop {
            let shard_head = self
                .shards
                .iter_mut()
                .filter_map(|s| s.queue.peek().map(|(k, _)| k))
                .min();
            let main_head = self
                .main
                .peek()
                .map(|(k, e)| (k, matches!(e, Ev::Dial { .. })));
            let Some(first) = [shard_head, main_head.map(|(k, _)| k)]
                .into_iter()
                .flatten()
                .min()
            else {
                return;
            };
            if let Some((key, false)) = main_head.filter(|&(k, _)| k == first) {
                let Some((_, event)) = self.main.pop() else {
                    return;
                };
                if self.handle(key, event, &mut progress) {
                    return;
                }
                self.end_of_step();
                continue;
            }
            let mut bound = (first.0 + MIN_LATENCY, 0);
            self.opening.clear();
            while let Some((key, dial)) = self.main.peek().map(|(k, e)| (k, *e)) {
                if key >= bound {
                    break;
                }
                let Ev::Dial { from, addr } = dial else {
                    bound = key;
                    break;
                };
                self.main.pop();
                self.dial_arrives(key, from, addr);
            }
            self.run_shards(bound);
            self.end_of_step();
        }
    }

    /// Every shard handles its events below `bound`, on the pool if there is enough work.
    fn run_shards(&mut self, bound: Key) {
        let env = &self.env;
        let work: usize = self.shards.iter().map(|s| s.pending_before(bound.0)).sum();
        match &self.pool {
            Some(pool) if work >= PARALLEL_EVENTS => {
                // One shard per pool thread: a scope's jobs would mostly run on the thread
                // that spawned them before a sleeping one woke to steal them.
                let shards: Vec<Mutex<&mut Shard>> =
                    self.shards.iter_mut().map(Mutex::new).collect();
                pool.broadcast(|ctx| {
                    if let Some(shard) = shards.get(ctx.index()) {
                        if let Ok(mut shard) = shard.lock() {
                            shard.run_until(env, bound);
                        }
                    }
                });
            }
            _ => {
                for shard in &mut self.shards {
                    shard.run_until(env, bound);
                }
            }
        }
    }

    /// After a window or a world's event: what the shards sent each other goes to its queue,
    /// and what they traced into the run's hash, in key order.
    pub(crate) fn end_of_step(&mut self) {
        for i in 0..self.shards.len() {
            let mut out = std::mem::take(&mut self.shards[i].out);
            for o in out.drain(..) {
                match o.event {
                    Ev::Deliver { to, from, .. } => {
                        let Some(slot) = self.env.slot(to) else {
                            continue;
                        };
                        let shard = &mut self.shards[self.env.place(slot).0];
                        let payload = shard.payloads.put(o.payload.unwrap_or_default());
                        shard
                            .queue
                            .push(o.at, o.seq, Ev::Deliver { to, from, payload });
                    }
                    event => self.main.push(o.at, o.seq, event),
                }
            }
            self.shards[i].out = out;
            self.entries.append(&mut self.shards[i].trace);
        }
        // Stable: one node's entries of one event come from one shard, in their order.
        self.entries.sort_by_key(|e| (e.key, e.uid));
        for e in self.entries.drain(..) {
            self.trace.fold(e.key.0, e.key.1, e.uid, &e.digest);
        }
    }

    /// A world's event; true when the run is over.
    fn handle(&mut self, key: Key, event: Ev, progress: &mut impl FnMut(u32)) -> bool {
        self.now = key.0;
        self.event = key;
        for shard in &mut self.shards {
            shard.now = key.0;
            shard.event = key;
        }
        match event {
            Ev::Minute(m) => {
                self.measure();
                self.crawler_minute(m);
                progress(m);
                if m >= self.env.p.minutes {
                    return true;
                }
                let seq = self.next_seq();
                self.main.push(key.0 + MINUTE, seq, Ev::Minute(m + 1));
            }
            Ev::Leave(uid) => self.leave(uid),
            Ev::Attack(uid) => self.attack(uid),
            _ => {}
        }
        false
    }
}
