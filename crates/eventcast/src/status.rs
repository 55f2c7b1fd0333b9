//! A node's lifecycle [`Status`], kept where the driver tasks can read it
//! ([`StatusCell`]), and who stops the node when a task fails
//! ([`StopAfterFault`]): the tasks must not know the public handle.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

/// Lifecycle state of a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Not bound (initial state, and after `stop()`).
    Stopped,
    /// `start()` is binding and joining.
    Starting,
    /// Bound, joined, receiving.
    Started,
    /// `stop()` is flushing and closing.
    Stopping,
}

impl Status {
    fn from_u8(v: u8) -> Status {
        match v {
            1 => Status::Starting,
            2 => Status::Started,
            3 => Status::Stopping,
            _ => Status::Stopped,
        }
    }
}

/// The status, readable and settable from any thread.
#[derive(Debug, Default)]
pub(crate) struct StatusCell(AtomicU8);

impl StatusCell {
    pub(crate) fn get(&self) -> Status {
        Status::from_u8(self.0.load(Ordering::Acquire))
    }

    pub(crate) fn set(&self, s: Status) {
        self.0.store(s as u8, Ordering::Release);
    }

    /// Whether the node is started or starting (a transport's report then
    /// concerns a live node).
    pub(crate) fn is_running(&self) -> bool {
        matches!(self.get(), Status::Started | Status::Starting)
    }
}

/// What stops a node after a driver fault: the node itself, known to the
/// driver's shared state only as this (`supervise` calls it on the runtime).
pub(crate) trait StopAfterFault: Send + Sync {
    /// Stops the node: tasks aborted, queued sends flushed, socket closed.
    fn stop_after_fault(self: Arc<Self>) -> Pin<Box<dyn Future<Output = ()> + Send>>;
}
