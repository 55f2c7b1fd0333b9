//! Supervision of the driver tasks: a panic in one (receive task, timer task,
//! stall guard, send flush), or a thread that panicked while holding the
//! node's state, becomes an `EINTERNAL` notification and a stopped node —
//! never a node that looks alive while part of it is dead.

use super::status::Status;
use super::{Error, Notification, Shared};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::task::JoinHandle;

/// The driver's tasks, named for fault reports (and for the test-only
/// fault injection, [`Eventcast::inject_fault`]).
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum DriverTask {
    /// The receive task ([`Eventcast::start`]).
    Receive = 1,
    /// The timer task.
    Timer = 2,
    /// The stall guard ([`Eventcast::start_polled`]).
    StallGuard = 3,
    /// The flush of queued sends (in the timer task, under the state lock).
    SendFlush = 4,
}

impl DriverTask {
    /// Lower-case name, as fault messages and the JS hook spell it.
    pub fn name(self) -> &'static str {
        match self {
            DriverTask::Receive => "receive",
            DriverTask::Timer => "timer",
            DriverTask::StallGuard => "stall guard",
            DriverTask::SendFlush => "send flush",
        }
    }

    /// The task named `name` (see [`name`](Self::name)).
    #[cfg(feature = "testing")]
    pub fn from_name(name: &str) -> Option<DriverTask> {
        [DriverTask::Receive, DriverTask::Timer, DriverTask::StallGuard, DriverTask::SendFlush]
            .into_iter()
            .find(|t| t.name() == name)
    }
}

/// Spawns a driver task whose panic is caught and reported through [`Shared::fault`].
pub(super) fn spawn(
    shared: &Arc<Shared>,
    task: DriverTask,
    fut: impl Future<Output = ()> + Send + 'static,
) -> JoinHandle<()> {
    let shared = shared.clone();
    tokio::spawn(async move {
        if let Err(message) = (CatchUnwind(Box::pin(fut))).await {
            shared.fault(&format!("the {} task panicked: {message}", task.name()));
        }
    })
}

/// Spawns a driver loop that blocks (on tokio's blocking pool; it must end by
/// itself when told to, `abort` cannot stop it), supervised like [`spawn`].
pub(super) fn spawn_blocking(
    shared: &Arc<Shared>,
    task: DriverTask,
    f: impl FnOnce() + Send + 'static,
) -> JoinHandle<()> {
    let shared = shared.clone();
    tokio::task::spawn_blocking(move || {
        if let Err(panic) = std::panic::catch_unwind(AssertUnwindSafe(f)) {
            shared.fault(&format!("the {} task panicked: {}", task.name(), panic_message(&*panic)));
        }
    })
}

/// A future that turns a panic while polling `F` into `Err(message)`.
struct CatchUnwind<F>(Pin<Box<F>>);

impl<F: Future<Output = ()>> Future for CatchUnwind<F> {
    type Output = Result<(), String>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let fut = &mut self.get_mut().0;
        // Unwind safety: after a panic the future is never polled again, and
        // the state it shared is only used to stop the node.
        match std::panic::catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(())) => Poll::Ready(Ok(())),
            Err(panic) => Poll::Ready(Err(panic_message(&*panic))),
        }
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}

impl Shared {
    /// A driver fault: the first one of a started period marks the node
    /// `Stopping`, tells subscribers and the sink (`EINTERNAL`), and stops
    /// the node on its runtime (tasks aborted, queued sends flushed for up to
    /// 1 s, group left, socket closed; then `Stopped`).
    pub(super) fn fault(&self, what: &str) {
        if self.faulted.swap(true, Ordering::AcqRel) {
            return;
        }
        tracing::error!("eventcast: {what}; stopping the node");
        if self.status.get() == Status::Started {
            self.status.set(Status::Stopping);
        }
        let owner = self.owner.upgrade();
        let err = Error::Internal(what.to_string());
        self.deliver(&mut vec![Notification::Error { code: err.code(), message: err.to_string() }]);
        let runtime = self.runtime.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if let (Some(node), Some(runtime)) = (owner, runtime) {
            runtime.spawn(node.stop_after_fault());
        }
    }

    /// Test hook: panics if [`Eventcast::inject_fault`] named `task`.
    pub(super) fn fault_point(&self, task: DriverTask) {
        if self.inject_fault.load(Ordering::Relaxed) == task as u8
            && self.inject_fault.compare_exchange(task as u8, 0, Ordering::AcqRel, Ordering::Relaxed).is_ok()
        {
            panic!("fault injected into the {} task", task.name());
        }
    }
}
