//! Read buffers kept for reuse by the thread that polls.
//!
//! An idle connection holds no read buffer (memory per instance), so every
//! poll used to allocate one and free it at its end: at 10,000 instances,
//! 10,000 allocations of a few KiB a second, and the metrics polls' larger
//! ones left holes between the long-lived samples. Here a poll takes an
//! emptied buffer from a small thread-local stack and gives it back when it
//! ends. A buffer whose replies are still referenced when it is given back
//! is simply re-allocated by its next `reserve` (bytes reclaims only a
//! buffer nothing else points into).

use bytes::BytesMut;
use std::cell::RefCell;

/// At most this many buffers kept per thread: about the polls one tick
/// starts at 10,000 instances (200), with room.
const KEEP: usize = 256;
/// Buffers grown past this (a big server's INFO ALL, a client list) are
/// freed, not kept: the stack holds at most KEEP × this.
const MAX_KEPT: usize = 32 * 1024;

thread_local! {
    static FREE: RefCell<Vec<BytesMut>> = const { RefCell::new(Vec::new()) };
}

/// An empty buffer with room for at least `room` bytes: a kept one when
/// there is one.
pub fn take(room: usize) -> BytesMut {
    let mut b = FREE.with(|f| f.borrow_mut().pop()).unwrap_or_default();
    b.reserve(room);
    b
}

/// Keep `b` for a later [`take`] (emptied), unless the stack is full or
/// `b` grew large.
pub fn give(mut b: BytesMut) {
    if b.capacity() == 0 || b.capacity() > MAX_KEPT {
        return;
    }
    b.clear();
    FREE.with(|f| {
        let mut f = f.borrow_mut();
        if f.len() < KEEP {
            f.push(b);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_given_buffer_is_reused_once_nothing_points_into_it() {
        let mut b = take(4096);
        b.extend_from_slice(&[7u8; 3000]);
        let reply = b.split_to(3000).freeze();
        let at = reply.as_ptr();
        give(b);
        drop(reply);
        let again = take(4096);
        assert!(again.is_empty());
        assert!(again.capacity() >= 4096);
        assert_eq!(again.as_ptr(), at, "the allocation was not reused");
    }

    #[test]
    fn a_buffer_still_referenced_is_not_written_over() {
        let mut b = take(4096);
        b.extend_from_slice(b"reply");
        let reply = b.split_to(5).freeze();
        give(b);
        let mut again = take(4096);
        again.extend_from_slice(b"other");
        assert_eq!(&reply[..], b"reply");
    }

    #[test]
    fn large_buffers_and_a_full_stack_are_not_kept() {
        let big = BytesMut::with_capacity(MAX_KEPT * 2);
        give(big);
        FREE.with(|f| assert!(f.borrow().iter().all(|b| b.capacity() <= MAX_KEPT)));
        for _ in 0..KEEP + 10 {
            give(BytesMut::with_capacity(64));
        }
        FREE.with(|f| assert_eq!(f.borrow().len(), KEEP));
    }
}
