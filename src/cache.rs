//! Cache hints. At 10,000 instances the state of one instance is cold by
//! the time it is next used: the fleet's working set is far larger than
//! the CPU's caches, and each poll or render touches a few lines in many
//! places. Where the next items are known ahead, asking for their lines
//! early lets the misses overlap instead of stalling one after another
//! (BENCHMARKS.md, "Lean again"). A hint only: a prefetch never faults and
//! changes nothing the program can observe, so a wrong or stale address
//! costs a wasted line, never correctness.

/// The cache line, on every x86_64 CPU redpulse runs on.
pub const LINE: usize = 64;

/// Ask the CPU to bring the `len` bytes from `start` into the cache, a line
/// at a time, without waiting for them. A plain read would do the same but
/// hold up everything after it until its line arrived; a prefetch does not.
#[allow(unsafe_code)]
pub fn prefetch(start: *const u8, len: usize) {
    #[cfg(target_arch = "x86_64")]
    for offset in (0..len.max(1)).step_by(LINE) {
        // SAFETY: PREFETCHT0 only hints the cache: it never faults, not
        // even on an invalid address, and reads nothing the program can
        // observe (`wrapping_add` forms the address without asserting it
        // is in bounds). SSE, which it needs, is part of the x86_64
        // baseline, so every x86_64 CPU has it.
        unsafe {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            _mm_prefetch::<_MM_HINT_T0>(start.wrapping_add(offset).cast());
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (start, len);
}
