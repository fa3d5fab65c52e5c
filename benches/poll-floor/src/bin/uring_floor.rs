//! The io_uring floor: one thread, one ring for every connection. At each
//! 20 ms tick the due connections' send and receive are queued together
//! and submitted with the wait for completions (one io_uring_enter per
//! wait, none per socket); completions are reaped in batches. No parsing,
//! no verdicts, no timeouts, no metrics. Polls so far go to COUNT_FILE
//! every 100 ms.

#[path = "../common.rs"]
mod common;

use io_uring::{opcode, types, IoUring};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

const TICK: Duration = Duration::from_millis(20);
/// Ticks per 1 s interval.
const SLOTS: usize = 50;
/// Room per connection for its replies.
const BUF: usize = 8192;

fn main() {
    let (port, n, out) = common::args();
    let conns: Vec<_> = (0..n).map(|i| common::connect(port + i as u16)).collect();
    let mut bufs = vec![0u8; n * BUF];
    let mut filled = vec![0usize; n];
    let mut wheel: Vec<Vec<usize>> = vec![Vec::new(); SLOTS];
    for i in 0..n {
        wheel[(common::unit(i) * SLOTS as f64) as usize % SLOTS].push(i);
    }
    let mut ring: IoUring = IoUring::builder().setup_cqsize(32768).build(8192).unwrap();
    let recv = |bufs: &mut [u8], i: usize, from: usize| {
        let fd = types::Fd(conns[i].0.as_raw_fd());
        let room = &mut bufs[i * BUF + from..(i + 1) * BUF];
        opcode::Recv::new(fd, room.as_mut_ptr(), room.len() as u32)
            .build()
            .user_data(((i as u64) << 1) | 1)
    };
    let start = Instant::now();
    let (mut tick, mut polls) = (0u32, 0u64);
    let mut counted = Instant::now();
    loop {
        let slot = tick as usize % SLOTS;
        for &i in &wheel[slot] {
            let (s, request, _) = &conns[i];
            filled[i] = 0;
            let send = opcode::Send::new(
                types::Fd(s.as_raw_fd()),
                request.as_ptr(),
                request.len() as u32,
            )
            .build()
            .user_data((i as u64) << 1);
            let r = recv(&mut bufs, i, 0);
            // SAFETY: the request is static and each connection's buffer
            // lives (unmoved) until the end of main; a connection has one
            // receive in flight at a time.
            unsafe {
                let mut sq = ring.submission();
                sq.push(&send).unwrap();
                sq.push(&r).unwrap();
            }
        }
        let next_tick = start + TICK * (tick + 1);
        loop {
            let now = Instant::now();
            if now >= next_tick {
                ring.submit().unwrap();
                break;
            }
            let left = next_tick - now;
            let ts = types::Timespec::new()
                .sec(left.as_secs())
                .nsec(left.subsec_nanos());
            match ring
                .submitter()
                .submit_with_args(1, &types::SubmitArgs::new().timespec(&ts))
            {
                Ok(_) => {}
                Err(e) if matches!(e.raw_os_error(), Some(libc::ETIME | libc::EINTR)) => {}
                Err(e) => panic!("io_uring_enter: {e}"),
            }
            let mut again = Vec::new();
            for cqe in ring.completion() {
                let (i, is_recv) = ((cqe.user_data() >> 1) as usize, cqe.user_data() & 1 == 1);
                assert!(cqe.result() > 0, "connection {i} failed: {}", cqe.result());
                if is_recv {
                    filled[i] += cqe.result() as usize;
                    if common::complete(&bufs[i * BUF..i * BUF + filled[i]], conns[i].2) {
                        polls += 1;
                    } else {
                        again.push(i);
                    }
                }
            }
            for i in again {
                let r = recv(&mut bufs, i, filled[i]);
                // SAFETY: as above.
                unsafe { ring.submission().push(&r).unwrap() };
            }
        }
        tick += 1;
        if counted.elapsed() >= Duration::from_millis(100) {
            common::write_count(&out, polls);
            counted = Instant::now();
        }
    }
}
