//! The outgoing side of PEX as BEP 11's implementation note suggests: "a per-torrent
//! timeline of connect/disconnect events and, per peer, a pointer to the last event sent".
//!
//! A [`Timeline`] is the shared, compacting log; a [`Cursor`] is one connection's position in
//! it (plus a rarely used side table for echo suppression). Walking a cursor forward yields
//! the next frame's `added` and `dropped` lists under every BEP 11 rule: add/drop of one
//! address cancel within a frame, `dropped` only names peers this connection was told about,
//! and a connection attached late first hears the live set, in the order peers connected.

use std::collections::btree_map::Entry as MapEntry;
use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;

use crate::grow::GrowByEighth;
use crate::peer::{Peer, PeerFlags};

mod batch;
mod cursor;
mod key;

pub(crate) use batch::Batch;
use batch::Shared;
pub(crate) use cursor::{Compactor, Cursor};
use key::LiveKey;

/// Sequence numbers start at 1, so a cursor at 0 has seen nothing.
pub(crate) type Seq = u64;

#[derive(Clone, Copy, Debug)]
enum Kind {
    /// A connection was established; `dropped_at` is the seq of its drop, once there is one.
    Add { dropped_at: Option<Seq> },
    /// The connection added at `add_seq` ended.
    Drop { add_seq: Seq },
}

/// One event of the log, 56 bytes: [`Kind`] is stored as `link` and `is_drop` so that its
/// tag shares a word with the flags (a log holds one entry per live peer of the torrent).
#[derive(Clone, Copy, Debug)]
struct Entry {
    seq: Seq,
    /// An add's `dropped_at` (0: not dropped yet), a drop's `add_seq`.
    link: Seq,
    addr: SocketAddr,
    flags: PeerFlags,
    is_drop: bool,
}

impl Entry {
    /// An entry of `kind` (an add not dropped yet, or a drop) at `seq`.
    fn new(seq: Seq, kind: Kind, addr: SocketAddr, flags: PeerFlags) -> Self {
        let (link, is_drop) = match kind {
            Kind::Add { dropped_at } => (dropped_at.unwrap_or(0), false),
            Kind::Drop { add_seq } => (add_seq, true),
        };
        Self {
            seq,
            link,
            addr,
            flags,
            is_drop,
        }
    }

    fn kind(&self) -> Kind {
        match (self.is_drop, self.link) {
            (true, add_seq) => Kind::Drop { add_seq },
            (false, 0) => Kind::Add { dropped_at: None },
            (false, d) => Kind::Add {
                dropped_at: Some(d),
            },
        }
    }
}

/// The shared log of connect and disconnect events of one torrent.
#[derive(Debug, Default)]
pub(crate) struct Timeline {
    /// Sorted by `seq`; compaction removes add/drop pairs no cursor needs. Grows by an
    /// eighth: it holds one entry per live peer.
    entries: VecDeque<Entry>,
    /// The seq of the last appended entry (0: none yet).
    head: Seq,
    /// Live peers: their add seq and flags, by packed address (cheap to compare).
    live: BTreeMap<LiveKey, (Seq, PeerFlags)>,
    /// Entries belonging to add/drop pairs (candidates for compaction).
    dead_entries: usize,
    /// How many of them the last compaction had to keep (a cursor sat between).
    kept_dead: usize,
}

impl Timeline {
    #[inline]
    pub(crate) fn head(&self) -> Seq {
        self.head
    }

    /// How many peers are live.
    pub(crate) fn live_len(&self) -> usize {
        self.live.len()
    }

    /// Every live peer, in address order.
    pub(crate) fn live_peers(&self) -> impl Iterator<Item = Peer> + '_ {
        self.live
            .iter()
            .map(|(&key, &(_, flags))| Peer::new(key.into(), flags))
    }

    #[inline]
    pub(crate) fn is_live(&self, addr: SocketAddr) -> bool {
        self.live.contains_key(&addr.into())
    }

    /// The add seq and flags of `addr`, if it is live.
    #[inline]
    fn live_entry(&self, addr: SocketAddr) -> Option<(Seq, PeerFlags)> {
        self.live.get(&addr.into()).copied()
    }

    /// Records that a connection to `addr` was established. Returns false if `addr` is
    /// already live (one address, one live entry): then only its flags change, for the
    /// connections not yet told about it.
    pub(crate) fn connected(&mut self, addr: SocketAddr, flags: PeerFlags) -> bool {
        // One descent of the map, whether `addr` is live already or new.
        match self.live.entry(addr.into()) {
            MapEntry::Occupied(mut live) => {
                let (add_seq, live_flags) = live.get_mut();
                *live_flags = flags;
                if let Ok(i) = self.entries.binary_search_by_key(add_seq, |e| e.seq) {
                    self.entries[i].flags = flags;
                }
                return false;
            }
            MapEntry::Vacant(slot) => {
                slot.insert((self.head + 1, flags));
            }
        }
        self.head += 1;
        let kind = Kind::Add { dropped_at: None };
        self.entries.reserve_one();
        self.entries
            .push_back(Entry::new(self.head, kind, addr, flags));
        true
    }

    /// Records that the connection to `addr` ended. Returns false if it was not live.
    pub(crate) fn disconnected(&mut self, addr: SocketAddr) -> bool {
        let Some((add_seq, flags)) = self.live.remove(&addr.into()) else {
            return false;
        };
        self.head += 1;
        if let Ok(i) = self.entries.binary_search_by_key(&add_seq, |e| e.seq) {
            self.entries[i].link = self.head;
        }
        self.entries.reserve_one();
        self.entries
            .push_back(Entry::new(self.head, Kind::Drop { add_seq }, addr, flags));
        self.dead_entries += 2;
        true
    }

    /// Whether compaction would pay off: dead pairs outnumber the live entries, and enough
    /// of them were written since the last compaction to pay for reading every one of the
    /// `cursors` again (at least one per 16 cursors) and the entries it had to keep (at
    /// least half as many). Without the first, while cursors are spread over the log and
    /// every dead pair has one between its entries, compaction would run on every call,
    /// each time a pass over every cursor: quadratic in the connections. Without the
    /// second, a single cursor that sits between every add and its drop (a connection that
    /// advertised its peers and is stopped, or waits out its interval, while they
    /// disconnect) would make every `drop_peer` a pass over the whole log: quadratic in the
    /// peers (a `reset` of N live peers cost N^2 / 2 entry reads). With it, the passes over
    /// kept entries are paid for by new dead ones, and the log stays within a constant
    /// factor of what the cursors need.
    pub(crate) fn wants_compaction(&self, cursors: usize) -> bool {
        self.dead_entries > 64.max(self.live.len())
            && self.dead_entries - self.kept_dead >= (cursors / 16).max(self.kept_dead / 2)
    }

    /// Removes every add/drop pair that no cursor sits between: for each cursor, either it
    /// has walked past the drop (nothing left to send) or not yet reached the add (it will
    /// never hear of a peer that has come and gone) — except pairs of an address some cursor
    /// keeps (see [`Cursor::returning`]): that cursor's remote still has the peer and must hear
    /// its drop. Both slices must be sorted.
    pub(crate) fn compact(&mut self, sorted_cursors: &[Seq], sorted_returning: &[SocketAddr]) {
        let needed = |addr: &SocketAddr, add: Seq, drop: Seq| {
            // The first cursor at or after the add: is it before the drop?
            let i = sorted_cursors.partition_point(|&c| c < add);
            sorted_cursors.get(i).is_some_and(|&c| c < drop)
                || sorted_returning.binary_search(addr).is_ok()
        };
        let before = self.entries.len();
        self.entries.retain(|e| match e.kind() {
            Kind::Add {
                dropped_at: Some(d),
            } => needed(&e.addr, e.seq, d),
            Kind::Add { dropped_at: None } => true,
            Kind::Drop { add_seq } => needed(&e.addr, add_seq, e.seq),
        });
        self.dead_entries -= before - self.entries.len();
        self.kept_dead = self.dead_entries;
    }

    /// Approximate heap bytes.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<Entry>()
            + self.live.len() * (std::mem::size_of::<(LiveKey, (Seq, PeerFlags))>() + 8)
    }

    /// Walks `cursor` forward, filling `batch` with the next frame's entries.
    pub(crate) fn walk(
        &self,
        cursor: &mut Cursor,
        batch: &mut Batch,
        suppress: impl Fn(SocketAddr) -> bool,
    ) {
        if cursor.position == 0 {
            // The first walk: the connection hears the live set of now, so pairs that
            // completed since it attached are none of its business either (otherwise a
            // full first frame could name a peer that left, its drop beyond the cap).
            cursor.attached_at = self.head + 1;
        }
        // Peers suppressed earlier and released since go first: they are the oldest news.
        // The rule that held them back is asked again (the remote may be that very peer).
        if let Some(echo) = cursor.echo.as_deref_mut() {
            while batch.added.len() < batch.max_added && !echo.readd.is_empty() {
                let addr = echo.readd.remove(0);
                match self.live_entry(addr) {
                    Some((_, flags)) if !suppress(addr) => {
                        batch.added.push(Peer::new(addr, flags));
                    }
                    // Held back again, or gone (its drop, still ahead, must be skipped).
                    _ => echo.suppressed.push(addr),
                }
            }
        }
        self.walk_log(cursor, batch, &suppress);
        cursor.forget_walked_runs();
    }

    /// [`first_after`](Self::first_after), or what the walk before found for the same
    /// position of the same log.
    fn start_of(&self, position: Seq, shared: &mut Shared) -> usize {
        shared.sync(self.head, self.entries.len());
        shared.start(position).unwrap_or_else(|| {
            let start = self.first_after(position);
            shared.remember_start(position, start);
            start
        })
    }

    /// The index of the first entry after seq `position`. Searched from the head back, in
    /// steps that double, then by halves: most cursors walk from just behind the head (a
    /// frame per change), and then this costs a few reads, where a search of the whole log
    /// cost one per halving of it.
    fn first_after(&self, position: Seq) -> usize {
        let after = |i: usize| self.entries[i].seq > position;
        let (mut low, mut high) = (0, self.entries.len());
        let mut step = 1;
        while step <= high {
            let probe = high - step;
            if !after(probe) {
                low = probe + 1;
                break;
            }
            high = probe;
            step *= 2;
        }
        // Every entry before `low` is at or before `position`, every one from `high` after.
        while low < high {
            let mid = low + (high - low) / 2;
            if after(mid) {
                high = mid;
            } else {
                low = mid + 1;
            }
        }
        low
    }

    /// The log part of [`walk`](Self::walk): from the cursor's position on, until the batch
    /// is full or the head is reached.
    fn walk_log(
        &self,
        cursor: &mut Cursor,
        batch: &mut Batch,
        suppress: &impl Fn(SocketAddr) -> bool,
    ) {
        let start = self.start_of(cursor.position, &mut batch.shared);
        for entry in self.entries.range(start..) {
            let consumed = match entry.kind() {
                Kind::Add { dropped_at } => {
                    walk_add(entry, dropped_at, self.head, cursor, batch, suppress)
                }
                Kind::Drop { add_seq } => {
                    // Connected again since (a later add): the drop would be stale news.
                    // Asked only of a drop no earlier rule skips: a cursor catching up walks
                    // many drops of pairs it never heard of, and each ask is a map descent.
                    let back = |shared: &mut Shared| {
                        shared.back(entry.seq).unwrap_or_else(|| {
                            let back = self
                                .live_entry(entry.addr)
                                .is_some_and(|(s, _)| s > entry.seq);
                            shared.remember_back(entry.seq, back);
                            back
                        })
                    };
                    let consumed = walk_drop(entry, add_seq, back, cursor, batch);
                    if consumed {
                        cursor.drop_walked(entry.addr);
                    }
                    consumed
                }
            };
            if !consumed {
                return; // the batch is full: this entry starts the next frame
            }
            cursor.position = entry.seq;
        }
        cursor.position = self.head;
    }
}

/// Puts an add into the batch unless a rule says otherwise; false if the batch is full.
/// `head` is the log's head. Always inlined: it runs once per add walked, and a call (with
/// the echo rule inlined into it) cost more than its early returns.
#[inline(always)]
fn walk_add(
    entry: &Entry,
    dropped_at: Option<Seq>,
    head: Seq,
    cursor: &mut Cursor,
    batch: &mut Batch,
    suppress: &impl Fn(SocketAddr) -> bool,
) -> bool {
    // Came and went before this connection attached: never its news.
    if dropped_at.is_some_and(|d| d < cursor.attached_at) {
        return true;
    }
    // Its previous drop was skipped because it came back: the remote still has it.
    if cursor.take_returning(entry.addr) {
        if dropped_at.is_some() {
            cursor.owe_drop(entry.addr); // and it must hear the drop ahead
        }
        return true;
    }
    // Held back: a peer that has already left (its drop is further on, maybe beyond this
    // frame: announcing it now would add a peer that is not live). Its drop is then
    // skipped too.
    if dropped_at.is_some() {
        cursor.skip_dead(entry.seq, head);
        return true;
    }
    // Held back: a peer the echo rule keeps from this remote.
    if (*suppress)(entry.addr) {
        cursor.suppress(entry.addr);
        return true;
    }
    if let Some(i) = batch.dropped.iter().position(|&a| a == entry.addr) {
        // Dropped and re-added within one frame: the remote's view already holds.
        batch.dropped.remove(i);
        return true;
    }
    if batch.added.len() == batch.max_added {
        return false;
    }
    batch.added.push(Peer::new(entry.addr, entry.flags));
    true
}

/// Puts a drop (of the add at `add_seq`) into the batch unless a rule says otherwise; false
/// if the batch is full. `back` says whether the peer has connected again since.
fn walk_drop(
    entry: &Entry,
    add_seq: Seq,
    back: impl FnOnce(&mut Shared) -> bool,
    cursor: &mut Cursor,
    batch: &mut Batch,
) -> bool {
    // A pair completed before this connection attached, or a peer never sent to it (it
    // had left when the cursor walked its add, or was held back).
    if entry.seq < cursor.attached_at
        || cursor.walked_dead(entry.addr, add_seq, entry.seq)
        || cursor.release(entry.addr)
    {
        return true;
    }
    // The peer is connected again: skip this drop and the add that brought it back, so no
    // frame drops a live peer (the drop and re-add may fall in different frames).
    if back(&mut batch.shared) {
        cursor.note_returning(entry.addr);
        return true;
    }
    if let Some(i) = batch.added.iter().position(|p| p.addr == entry.addr) {
        // BEP 11: "An added contact must not be dropped in the same message."
        batch.added.remove(i);
        return true;
    }
    if batch.dropped.len() == batch.max_dropped {
        return false;
    }
    batch.dropped.push(entry.addr);
    true
}

#[cfg(test)]
mod tests;
