//! Response bodies: whole (every answer but one, sent with its length) or
//! chunks handed over while they are made (`/metrics`, rendered family by
//! family on the blocking pool and sent chunked, so a 10,000-instance
//! scrape never sits in memory whole).

use bytes::Bytes;
use hyper::body::{Frame, SizeHint};
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::sync::mpsc;

/// A response body.
#[derive(Debug)]
pub enum Body {
    /// All of it at once (`None` once sent).
    Whole(Option<Bytes>),
    /// Chunks as a producer sends them; the end is the producer dropping
    /// its sender. A producer that fails mid-way just stops: the client
    /// sees a body cut short (chunked encoding has no other way to say so).
    Chunks(mpsc::Receiver<Bytes>),
}

impl From<Bytes> for Body {
    fn from(b: Bytes) -> Body {
        Body::Whole(Some(b))
    }
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            Body::Whole(b) => Poll::Ready(
                b.take()
                    .filter(|b| !b.is_empty())
                    .map(|b| Ok(Frame::data(b))),
            ),
            Body::Chunks(rx) => rx.poll_recv(cx).map(|c| c.map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Body::Whole(b) => b.as_ref().is_none_or(Bytes::is_empty),
            Body::Chunks(_) => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Body::Whole(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            Body::Chunks(_) => SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn whole_and_chunked_bodies_collect_to_what_was_sent() {
        let b = Body::from(Bytes::from_static(b"abc"));
        assert_eq!(hyper::body::Body::size_hint(&b).exact(), Some(3));
        assert_eq!(b.collect().await.unwrap().to_bytes(), "abc");
        let (tx, rx) = mpsc::channel(2);
        let b = Body::Chunks(rx);
        assert_eq!(hyper::body::Body::size_hint(&b).exact(), None);
        tokio::spawn(async move {
            for part in ["one ", "two ", "three"] {
                tx.send(Bytes::from_static(part.as_bytes())).await.unwrap();
            }
        });
        assert_eq!(b.collect().await.unwrap().to_bytes(), "one two three");
    }
}
