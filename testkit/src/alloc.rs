#![allow(unsafe_code)]
//! A counting global allocator for the allocation tests and the swarm benchmark. Install it
//! with `#[global_allocator] static A: testkit::alloc::Counting = testkit::alloc::Counting;`
//! (no `unsafe` needed at the installing site: the one `unsafe impl` lives here).
//!
//! It forwards every call to [`System`] and keeps, for the whole process, the number of
//! allocation calls, the live bytes and their peak; and, for [`count`], the calls and bytes
//! of the current thread alone, so tests running in parallel cannot disturb a count.
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Mutex;

/// The allocator: install with `#[global_allocator] static A: Counting = Counting;`.
#[derive(Debug)]
pub struct Counting;

static CALLS: AtomicUsize = AtomicUsize::new(0);
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static HERE_CALLS: AtomicUsize = AtomicUsize::new(0);
static HERE_BYTES: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    // `const` and without `Drop`: reading it never allocates, so the allocator may use it.
    static COUNTING_HERE: Cell<bool> = const { Cell::new(false) };
}

fn allocated(size: usize) {
    CALLS.fetch_add(1, Relaxed);
    let live = LIVE.fetch_add(size, Relaxed) + size;
    PEAK.fetch_max(live, Relaxed);
    if COUNTING_HERE.try_with(Cell::get).unwrap_or(false) {
        HERE_CALLS.fetch_add(1, Relaxed);
        HERE_BYTES.fetch_add(size, Relaxed);
    }
}

// SAFETY: every method forwards its arguments unchanged to `System`, which upholds the
// `GlobalAlloc` contract; the counting touches only atomics and a const thread-local.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        allocated(layout.size());
        // SAFETY: the caller's contract for `alloc` is passed on as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        allocated(layout.size());
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_sub(layout.size(), Relaxed);
        allocated(new_size);
        // SAFETY: as above; `ptr` was allocated by `System` through this allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Relaxed);
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// Allocation calls made by the whole process so far.
pub fn calls() -> usize {
    CALLS.load(Relaxed)
}

/// Bytes allocated and not yet freed, by the whole process.
pub fn live_bytes() -> usize {
    LIVE.load(Relaxed)
}

/// The highest [`live_bytes`] since the last [`reset_peak`].
pub fn peak_bytes() -> usize {
    PEAK.load(Relaxed)
}

/// Restarts [`peak_bytes`] from the current live bytes.
pub fn reset_peak() {
    PEAK.store(LIVE.load(Relaxed), Relaxed);
}

/// Allocation calls and bytes requested by one closure on this thread.
#[derive(Debug, PartialEq, Eq)]
pub struct Allocs {
    /// Calls to `alloc`, `alloc_zeroed` and `realloc`.
    pub calls: usize,
    /// Bytes they requested.
    pub bytes: usize,
}

/// Runs `f` on this thread and returns its result with the allocations it made. Counting
/// sections do not nest and the totals are global, so callers are serialised by a lock.
pub fn count<R>(f: impl FnOnce() -> R) -> (R, Allocs) {
    static LOCK: Mutex<()> = Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    HERE_CALLS.store(0, Relaxed);
    HERE_BYTES.store(0, Relaxed);
    COUNTING_HERE.with(|c| c.set(true));
    let result = f();
    COUNTING_HERE.with(|c| c.set(false));
    let allocs = Allocs {
        calls: HERE_CALLS.load(Relaxed),
        bytes: HERE_BYTES.load(Relaxed),
    };
    (result, allocs)
}
