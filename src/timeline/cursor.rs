//! [`Cursor`]: one connection's position in the [`Timeline`], and the [`Compactor`] that
//! asks every cursor what the log must keep.

use std::net::SocketAddr;

use super::{Seq, Timeline};

/// One connection's position in the [`Timeline`].
#[derive(Debug, Default)]
pub(crate) struct Cursor {
    /// The seq of the last entry walked.
    pub(super) position: Seq,
    /// The timeline's head when the connection attached: add/drop pairs complete before it
    /// are none of this connection's business.
    pub(super) attached_at: Seq,
    /// Peers held back from this remote; allocated only when there are any.
    pub(super) echo: Option<Box<Echo>>,
    /// The remote's own address, never sent to it (see [`set_own`](Self::set_own)).
    own: Option<SocketAddr>,
    /// Whether the add of `own` was suppressed (so its drop must be too). Every connection
    /// of a swarm suppresses its own address in its first frame; a flag here instead of an
    /// entry in `echo` saves every connection a side table.
    own_suppressed: bool,
}

/// Peers held back from one connection: those that left before it heard of them, and, for
/// echo suppression, those its remote told us about or is (BEP 11 has no use for those).
#[derive(Debug, Default)]
pub(super) struct Echo {
    /// Peers whose add was walked but not sent: their drop must not be sent either.
    pub(super) suppressed: Vec<SocketAddr>,
    /// Suppressed peers the remote stopped claiming while still live: news again.
    pub(super) readd: Vec<SocketAddr>,
    /// Peers whose drop was skipped because they connected again: their next add is
    /// skipped too (the remote never stopped having them).
    pub(super) returning: Vec<SocketAddr>,
    /// Adds walked past unsent because their drop was already in the log, as runs of seqs
    /// rather than one address each: a cursor far behind walks every peer that left since
    /// it attached, and one entry per peer per connection was most of a swarm's peak heap.
    dead: Vec<DeadRun>,
    /// Dead adds walked past that were not held back after all (their earlier drop had been
    /// skipped: the remote still has them), so their drop is sent even inside a run.
    owed: Vec<SocketAddr>,
}

/// Adds at seqs `first..=last` walked while the log's head was `head`: any of them whose drop
/// is at or before `head` was dead when walked, and so not sent.
#[derive(Clone, Copy, Debug)]
struct DeadRun {
    first: Seq,
    last: Seq,
    head: Seq,
}

impl Echo {
    fn len(&self) -> usize {
        self.suppressed.len()
            + self.readd.len()
            + self.returning.len()
            + self.dead.len()
            + self.owed.len()
    }
}

impl Cursor {
    /// A cursor for a connection attaching now: it starts at the beginning of the log, so
    /// the live set comes first, and skips pairs that completed before `head`.
    pub(crate) fn attach(timeline: &Timeline) -> Self {
        Self {
            position: 0,
            attached_at: timeline.head() + 1,
            echo: None,
            own: None,
            own_suppressed: false,
        }
    }

    /// The remote's own address, as far as known.
    #[inline]
    pub(crate) fn own(&self) -> Option<SocketAddr> {
        self.own
    }

    /// Records the remote's own address. If the previous one had its add suppressed, it
    /// moves to the side table, so that its drop is still skipped.
    pub(crate) fn set_own(&mut self, addr: SocketAddr) {
        if let Some(old) = self.own.filter(|&old| old != addr) {
            if std::mem::take(&mut self.own_suppressed) {
                self.echo
                    .get_or_insert_with(Box::default)
                    .suppressed
                    .push(old);
            }
        }
        self.own = Some(addr);
    }

    #[inline]
    pub(crate) fn position(&self) -> Seq {
        self.position
    }

    /// Peers whose drop this cursor skipped because they came back: it still has to walk
    /// their re-add (and maybe a later drop), so compaction must leave those entries.
    pub(crate) fn returning(&self) -> &[SocketAddr] {
        self.echo.as_ref().map_or(&[], |e| &e.returning)
    }

    /// [`returning`](Self::returning), sorted in place (the list is a set: order means
    /// nothing to the walk).
    pub(crate) fn sorted_returning(&mut self) -> &[SocketAddr] {
        match self.echo.as_deref_mut() {
            Some(echo) => {
                echo.returning.sort_unstable();
                &echo.returning
            }
            None => &[],
        }
    }

    /// Whether the walk has anything left to look at.
    #[inline]
    pub(crate) fn has_pending(&self, timeline: &Timeline) -> bool {
        self.position < timeline.head() || self.echo.as_ref().is_some_and(|e| !e.readd.is_empty())
    }

    /// Records that `addr`'s add is held back.
    ///
    /// The side table needs no cap of its own: each entry stands for a pair of log entries
    /// this cursor is between (a held-back add whose drop is ahead, a skipped drop whose
    /// re-add is ahead), or for a live peer to re-add; so it is bounded by the host's live
    /// set and the log it has not walked yet, and a remote cannot grow it.
    pub(super) fn suppress(&mut self, addr: SocketAddr) {
        if Some(addr) == self.own {
            self.own_suppressed = true;
            return;
        }
        self.echo
            .get_or_insert_with(Box::default)
            .suppressed
            .push(addr);
    }

    /// Records that the add at `add_seq` is held back because its drop is already in the log
    /// (whose head is `head`); [`walked_dead`](Self::walked_dead) then recognises its drop.
    ///
    /// Adds walked at one head extend one run (no add between them was sent: any dead one
    /// of them is in the run, any live one's drop is beyond `head`), so a cursor has at most
    /// one run per frame it sent since it last caught up with the head, and none after.
    pub(super) fn skip_dead(&mut self, add_seq: Seq, head: Seq) {
        let dead = &mut self.echo.get_or_insert_with(Box::default).dead;
        match dead.last_mut() {
            Some(run) if run.head == head => run.last = add_seq,
            _ => dead.push(DeadRun {
                first: add_seq,
                last: add_seq,
                head,
            }),
        }
    }

    /// Whether the add at `add_seq` (of `addr`), whose drop is at `drop_seq`, was held back
    /// by [`skip_dead`](Self::skip_dead) (so the drop must not be sent either). A drop
    /// [`owe_drop`](Self::owe_drop) recorded is not: its add lies inside a run but was not
    /// held back.
    #[inline]
    pub(super) fn walked_dead(&self, addr: SocketAddr, add_seq: Seq, drop_seq: Seq) -> bool {
        let Some(echo) = self.echo.as_deref() else {
            return false;
        };
        if echo.owed.contains(&addr) {
            return false;
        }
        let i = echo.dead.partition_point(|r| r.last < add_seq);
        echo.dead
            .get(i)
            .is_some_and(|r| r.first <= add_seq && drop_seq <= r.head)
    }

    /// Records that the drop of `addr` was walked (sent or skipped): it is owed no longer.
    /// Not done by [`walked_dead`](Self::walked_dead) itself, because a drop that finds the
    /// batch full is walked again for the next frame and must still be owed then.
    #[inline]
    pub(super) fn drop_walked(&mut self, addr: SocketAddr) {
        let Some(echo) = self.echo.as_deref_mut() else {
            return;
        };
        if remove(&mut echo.owed, addr) {
            self.free_empty_echo();
        }
    }

    /// Records that a dead add was walked but not held back (see [`Echo::owed`]).
    pub(super) fn owe_drop(&mut self, addr: SocketAddr) {
        self.echo.get_or_insert_with(Box::default).owed.push(addr);
    }

    /// Forgets the runs whose drops are all behind the cursor now.
    #[inline]
    pub(super) fn forget_walked_runs(&mut self) {
        let Some(echo) = self.echo.as_deref_mut() else {
            return;
        };
        let done = echo.dead.partition_point(|r| r.head <= self.position);
        echo.dead.drain(..done);
        self.free_empty_echo();
    }

    /// Records that `addr`'s drop is skipped because it is back (see [`suppress`](Self::suppress)
    /// for the bound).
    pub(super) fn note_returning(&mut self, addr: SocketAddr) {
        self.echo
            .get_or_insert_with(Box::default)
            .returning
            .push(addr);
    }

    /// If `addr`'s drop was skipped, forgets that and returns true: skip its re-add.
    #[inline]
    pub(super) fn take_returning(&mut self, addr: SocketAddr) -> bool {
        let Some(echo) = self.echo.as_deref_mut() else {
            return false;
        };
        let found = remove(&mut echo.returning, addr);
        self.free_empty_echo();
        found
    }

    #[inline]
    fn free_empty_echo(&mut self) {
        if self.echo.as_ref().is_some_and(|e| e.len() == 0) {
            self.echo = None;
        }
    }

    /// If `addr` was held back (or is queued to be re-added), forgets it and returns true:
    /// its drop must not be sent.
    #[inline]
    pub(super) fn release(&mut self, addr: SocketAddr) -> bool {
        // The flag first: asked of every drop walked, and it is rarely set.
        if self.own_suppressed && Some(addr) == self.own {
            self.own_suppressed = false;
            return true;
        }
        let Some(echo) = self.echo.as_deref_mut() else {
            return false;
        };
        let found = remove(&mut echo.suppressed, addr) || remove(&mut echo.readd, addr);
        self.free_empty_echo();
        found
    }

    /// The remote stopped claiming `addr`: if we held it back and it is still live, it is
    /// news for this remote again.
    pub(crate) fn unclaimed(&mut self, addr: SocketAddr, timeline: &Timeline) {
        if !timeline.is_live(addr) {
            return; // its drop, still ahead of the cursor, must stay suppressed
        }
        if let Some(echo) = self.echo.as_deref_mut() {
            if remove(&mut echo.suppressed, addr) {
                echo.readd.push(addr);
            }
        }
    }

    /// The remote now claims `addr`: a pending re-add of it is held back again.
    pub(crate) fn claimed(&mut self, addr: SocketAddr) {
        if let Some(echo) = self.echo.as_deref_mut() {
            if remove(&mut echo.readd, addr) {
                echo.suppressed.push(addr);
            }
        }
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.echo.as_ref().map_or(0, |e| {
            std::mem::size_of::<Echo>()
                + (e.suppressed.capacity()
                    + e.readd.capacity()
                    + e.returning.capacity()
                    + e.owed.capacity())
                    * std::mem::size_of::<SocketAddr>()
                + e.dead.capacity() * std::mem::size_of::<DeadRun>()
        })
    }
}

fn remove(list: &mut Vec<SocketAddr>, addr: SocketAddr) -> bool {
    match list.iter().position(|&a| a == addr) {
        Some(i) => {
            list.swap_remove(i);
            true
        }
        None => false,
    }
}

/// Scratch space for compacting a [`Timeline`] under many cursors, kept between runs so a
/// compaction allocates nothing once warm.
#[derive(Debug, Default)]
pub(crate) struct Compactor {
    positions: Vec<Seq>,
    returning: Vec<SocketAddr>,
}

impl Compactor {
    /// Compacts `timeline` if that pays off, keeping what any of the `count` cursors still
    /// needs. The count comes separately so that deciding not to compact (the usual case)
    /// costs nothing per cursor.
    #[inline]
    pub(crate) fn run<'c, I: Iterator<Item = &'c Cursor>>(
        &mut self,
        timeline: &mut Timeline,
        count: usize,
        cursors: impl FnOnce() -> I,
    ) {
        if !timeline.wants_compaction(count) {
            return;
        }
        self.positions.clear();
        self.returning.clear();
        for cursor in cursors() {
            self.positions.push(cursor.position());
            self.returning.extend_from_slice(cursor.returning());
        }
        self.positions.sort_unstable();
        self.returning.sort_unstable();
        timeline.compact(&self.positions, &self.returning);
    }

    /// Compacts `timeline` for a single cursor (a `PexState`): no scratch space needed.
    pub(crate) fn run_one(timeline: &mut Timeline, cursor: &mut Cursor) {
        if timeline.wants_compaction(1) {
            let position = cursor.position();
            timeline.compact(&[position], cursor.sorted_returning());
        }
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.positions.capacity() * std::mem::size_of::<Seq>()
            + self.returning.capacity() * std::mem::size_of::<SocketAddr>()
    }
}
