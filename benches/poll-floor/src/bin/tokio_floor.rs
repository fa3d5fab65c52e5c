//! The tokio floor: one current-thread runtime, a task per connection, a
//! sleep per poll rounded to 20 ms ticks, one write of the poll request
//! and reads until the replies are whole. No parsing, no verdicts, no
//! timeouts, no metrics: what redpulse's poller shape costs with nothing
//! to do. Polls so far go to COUNT_FILE every 100 ms.

#[path = "../common.rs"]
mod common;

use std::cell::Cell;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

thread_local!(static POLLS: Cell<u64> = const { Cell::new(0) });
const TICK: Duration = Duration::from_millis(20);

fn on_tick(t: Instant, base: Instant) -> Instant {
    let ticks = t
        .saturating_duration_since(base)
        .as_nanos()
        .div_ceil(TICK.as_nanos());
    base + Duration::from_nanos((ticks * TICK.as_nanos()) as u64)
}

fn main() {
    let (port, n, out) = common::args();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let base = Instant::now();
        for i in 0..n {
            let (std_stream, request, replies) = common::connect(port + i as u16);
            std_stream.set_nonblocking(true).unwrap();
            tokio::spawn(async move {
                let mut s = tokio::net::TcpStream::from_std(std_stream).unwrap();
                let mut buf = Vec::with_capacity(8192);
                let mut next = base + Duration::from_secs(1).mul_f64(common::unit(i));
                loop {
                    tokio::time::sleep_until(on_tick(next, base)).await;
                    s.write_all(request).await.unwrap();
                    buf.clear();
                    while !common::complete(&buf, replies) {
                        assert!(s.read_buf(&mut buf).await.unwrap() > 0, "closed");
                    }
                    POLLS.with(|p| p.set(p.get() + 1));
                    next += Duration::from_secs(1);
                }
            });
        }
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            common::write_count(&out, POLLS.with(|p| p.get()));
        }
    });
}
