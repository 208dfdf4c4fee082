//! Waiting for a record to be durable (`appendfsync always`) without blocking the connection's thread: the
//! future registers its task's waker with the pipeline, and the thread that completes the covering fsync
//! (or learns that it failed) wakes it. One fsync wakes every waiter it covers.

use super::pipeline::Shared;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Resolves when the record ending at stream offset `target` is durable (`Ok`) or never will be (`Err`,
/// with the error reply's text).
pub struct Durable<'a> {
    shared: &'a Shared,
    target: u64,
}

impl<'a> Durable<'a> {
    pub(super) fn new(shared: &'a Shared, target: u64) -> Self {
        Durable { shared, target }
    }
}

impl Future for Durable<'_> {
    type Output = Result<(), String>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Poll::Ready(r) = self.shared.outcome(self.target) {
            return Poll::Ready(r);
        }
        self.shared.add_waiter(self.target, cx.waker());
        // The outcome may have been settled between the check and the registration.
        self.shared.outcome(self.target)
    }
}
