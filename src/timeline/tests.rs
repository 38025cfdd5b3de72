//! The timeline's compaction and walk rules, on the log and cursors directly.

use super::*;

/// Cursors spread over the log (connections sending at different times) keep every
/// dead pair: compaction must then wait for new dead entries, not run again on every
/// call (with many connections that was a sort of every cursor per frame sent).
#[test]
fn compaction_that_kept_everything_waits_for_new_dead_entries() {
    let mut timeline = Timeline::default();
    let mut cursors = Vec::new();
    let addr = |i: u16| SocketAddr::from(([10, 0, 0, 1], i));
    for i in 1..=100 {
        timeline.connected(addr(i), PeerFlags::EMPTY);
        // A connection whose cursor is between this add and its drop.
        cursors.push(timeline.head());
        timeline.disconnected(addr(i));
    }
    let n = cursors.len();
    assert!(timeline.wants_compaction(n));
    timeline.compact(&cursors, &[]);
    assert_eq!(timeline.entries.len(), 200, "every pair is needed");
    assert!(!timeline.wants_compaction(n));
    // 200 kept: the next compaction waits for 100 new dead entries (more than the 6
    // that 100 cursors ask for).
    for i in 101..=149 {
        timeline.connected(addr(i), PeerFlags::EMPTY);
        timeline.disconnected(addr(i));
    }
    assert!(
        !timeline.wants_compaction(n),
        "98 new dead entries: not yet"
    );
    timeline.connected(addr(150), PeerFlags::EMPTY);
    timeline.disconnected(addr(150));
    assert!(timeline.wants_compaction(n));
    timeline.compact(&cursors, &[]);
    assert_eq!(timeline.entries.len(), 200, "the new pairs had no cursor");
    assert!(!timeline.wants_compaction(n));
    // Fewer cursors do not make it run sooner: what it kept is read again either way.
    assert!(!timeline.wants_compaction(1));
}

/// One cursor between every add and its drop (a stopped connection that had advertised
/// everything): dropping the peers one by one compacts O(log N) times, not once per
/// drop.
#[test]
fn compaction_under_one_stuck_cursor_is_amortized() {
    let mut timeline = Timeline::default();
    let addr = |i: u16| SocketAddr::from(([10, 0, 0, 1], i));
    for i in 1..=1000 {
        timeline.connected(addr(i), PeerFlags::EMPTY);
    }
    let cursor = [timeline.head()];
    let mut compactions = 0;
    for i in 1..=1000 {
        timeline.disconnected(addr(i));
        if timeline.wants_compaction(1) {
            timeline.compact(&cursor, &[]);
            compactions += 1;
        }
    }
    assert_eq!(timeline.entries.len(), 2000, "every pair is needed");
    assert!(
        compactions <= 12,
        "{compactions} compactions for 1000 drops"
    );
}

fn addr(i: u16) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, 1], i))
}

/// One walk of `cursor` with room for `max_added` adds: the addresses added and dropped.
fn walk(
    timeline: &Timeline,
    cursor: &mut Cursor,
    max_added: usize,
) -> (Vec<SocketAddr>, Vec<SocketAddr>) {
    let mut batch = Batch::default();
    batch.reset(max_added, 50);
    timeline.walk(cursor, &mut batch, |_| false);
    let added = batch.added.iter().map(|p| p.addr).collect();
    (added, batch.dropped)
}

/// A cursor far behind walks past every peer that left since it attached: it keeps one run
/// per frame for them, not one address each (that was most of a 10,000-connection swarm's
/// peak heap), and still sends none of their drops.
#[test]
fn a_cursor_behind_keeps_dead_adds_as_one_run() {
    let mut timeline = Timeline::default();
    let mut cursor = Cursor::attach(&timeline);
    for i in 1..=1002 {
        timeline.connected(addr(i), PeerFlags::EMPTY);
    }
    assert_eq!(walk(&timeline, &mut cursor, 1).0, [addr(1)]);
    for i in 2..=1000 {
        timeline.disconnected(addr(i));
    }
    // 999 dead adds walked, then the two live ones fill two frames.
    assert_eq!(walk(&timeline, &mut cursor, 1), (vec![addr(1001)], vec![]));
    let one_run = cursor.heap_bytes();
    assert!(one_run <= 256, "{one_run} B for 999 dead adds");
    assert_eq!(walk(&timeline, &mut cursor, 1), (vec![addr(1002)], vec![]));
    assert!(!cursor.has_pending(&timeline), "their drops were skipped");
    assert_eq!(cursor.heap_bytes(), 0, "caught up: the run is forgotten");
}

/// A peer that left, came back and left again while a cursor was behind: its re-add is
/// skipped (the remote never heard its first drop), so the second drop must be sent even
/// though dead adds on both sides of its re-add were held back in one run.
#[test]
fn a_returning_peer_that_left_again_is_dropped_inside_a_dead_run() {
    let mut timeline = Timeline::default();
    let mut cursor = Cursor::attach(&timeline);
    let (x, q, r, u, v, w) = (addr(1), addr(2), addr(3), addr(4), addr(5), addr(6));
    timeline.connected(x, PeerFlags::EMPTY); // 1
    assert_eq!(walk(&timeline, &mut cursor, 1).0, [x]);
    timeline.connected(q, PeerFlags::EMPTY); // 2
    timeline.disconnected(x); // 3
    timeline.connected(r, PeerFlags::EMPTY); // 4
    timeline.connected(x, PeerFlags::EMPTY); // 5
                                             // Q fills the frame; x's drop is skipped (x is back); R starts the next frame.
    assert_eq!(walk(&timeline, &mut cursor, 1), (vec![q], vec![]));
    for peer in [u, v, w] {
        timeline.connected(peer, PeerFlags::EMPTY); // 6, 7, 8
    }
    timeline.disconnected(x); // 9
    timeline.disconnected(u); // 10
    timeline.disconnected(r); // 11
                              // R and U are dead, x's re-add is skipped as returning, V fills the frame.
    assert_eq!(walk(&timeline, &mut cursor, 1), (vec![v], vec![]));
    assert_eq!(walk(&timeline, &mut cursor, 1), (vec![w], vec![x]));
    assert!(!cursor.has_pending(&timeline));
    assert_eq!(cursor.heap_bytes(), 0);
}

/// Cursors sharing one batch (a `Swarm`'s) reuse where the walk before started only while
/// the log is the same: a compaction that removed entries before that start moves every
/// index, and the next cursor at the same position must search again.
#[test]
fn a_shared_start_is_searched_again_after_a_compaction() {
    let mut timeline = Timeline::default();
    let (mut a, mut b) = (Cursor::attach(&timeline), Cursor::attach(&timeline));
    let (p, y, q) = (addr(1), addr(2), addr(3));
    timeline.connected(p, PeerFlags::EMPTY); // 1
    timeline.disconnected(p); // 2
    timeline.connected(y, PeerFlags::EMPTY); // 3
    let mut batch = Batch::default();
    let mut walk = |cursor: &mut Cursor, timeline: &Timeline| {
        batch.reset(50, 50);
        timeline.walk(cursor, &mut batch, |_| false);
        batch.added.iter().map(|p| p.addr).collect::<Vec<_>>()
    };
    assert_eq!(walk(&mut a, &timeline), [y]);
    assert_eq!(walk(&mut b, &timeline), [y]);
    timeline.connected(q, PeerFlags::EMPTY); // 4, at index 3
    assert_eq!(walk(&mut a, &timeline), [q]);
    // Both cursors are past p's pair: it goes, and q is at index 1 now.
    timeline.compact(&[3, 4], &[]);
    assert_eq!(timeline.entries.len(), 2);
    assert_eq!(walk(&mut b, &timeline), [q]);
}
