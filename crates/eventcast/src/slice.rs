//! A short scheduler slice for the threads that run the driver.
//!
//! The driver's threads work in short bursts that someone waits for: a tokio
//! worker hands a lone event to the NATS socket while the emitting thread goes
//! on, or hands a received batch to the JS thread. When such a thread wakes on
//! a busy CPU, Linux's EEVDF scheduler lets it preempt the running thread only
//! if its slice is shorter; with the default slice (0.7 ms × (1 + log2 CPUs),
//! 1.4 ms on 2 CPUs) it may wait for the running thread's slice to end. Since
//! Linux 6.12 a thread may ask for its own slice (`sched_attr.sched_runtime`
//! under `SCHED_OTHER`, 0.1–100 ms, no privilege needed); a shorter one is the
//! kernel's documented way to say "latency-sensitive, short bursts". It does
//! not change the thread's share of the CPU, only how soon it gets it.
//!
//! Older kernels ignore the field, other systems have no such call: the
//! request is then a no-op. The thread's policy and nice value are kept, and a
//! thread under another policy (`SCHED_BATCH`, `SCHED_IDLE`, real-time) is
//! left as it is: someone chose that.
//!
//! The addon's runtime and the CLI's ask for it on each worker thread (both
//! are built by [`driver_runtime_builder`]); a Rust program can use that
//! builder too, or call [`request_short_slice`] in its own
//! `tokio::runtime::Builder::on_thread_start`.

/// The slice the driver's threads ask for: the kernel's minimum, 0.1 ms.
pub const DRIVER_SLICE_NS: u64 = 100_000;

/// The name of the driver's runtime threads (the addon's and the CLI's), as
/// `top -H`, `perf` and `/proc/<pid>/task/*/comm` show it.
pub const DRIVER_THREAD_NAME: &str = "eventcast-rt";

/// The tokio runtime the addon and the CLI run the driver on: multi-thread,
/// I/O and time enabled, workers named [`DRIVER_THREAD_NAME`], each asking
/// for the short slice ([`request_short_slice`]) as it starts.
pub fn driver_runtime_builder() -> tokio::runtime::Builder {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all().thread_name(DRIVER_THREAD_NAME).on_thread_start(|| {
        request_short_slice();
    });
    builder
}

/// Asks the scheduler to give the calling thread a [`DRIVER_SLICE_NS`] slice.
///
/// Returns the slice the kernel reports afterwards, in nanoseconds: the
/// requested one on Linux 6.12 and later, the default slice or 0 where custom
/// slices do not exist, `None` when the thread was left alone (another
/// policy, or no such system call). Never fails: this is a hint.
///
/// ```no_run
/// let rt = tokio::runtime::Builder::new_multi_thread()
///     .enable_all()
///     .on_thread_start(|| {
///         eventcast::request_short_slice();
///     })
///     .build()?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn request_short_slice() -> Option<u64> {
    imp::request(DRIVER_SLICE_NS)
}

/// The calling thread's slice as the kernel reports it (nanoseconds), or
/// `None` where it cannot be read.
pub fn current_slice() -> Option<u64> {
    imp::get().map(|a| a.sched_runtime)
}

#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64", target_arch = "x86", target_arch = "arm")
))]
mod imp {
    /// `struct sched_attr`, first version (48 bytes): the fields every kernel
    /// since 3.14 knows. Asking for this size keeps newer fields (utilization
    /// clamps) out of the exchange.
    #[repr(C)]
    #[derive(Default, Clone, Copy)]
    pub(super) struct SchedAttr {
        size: u32,
        sched_policy: u32,
        sched_flags: u64,
        sched_nice: i32,
        sched_priority: u32,
        pub(super) sched_runtime: u64,
        sched_deadline: u64,
        sched_period: u64,
    }

    const SCHED_ATTR_SIZE_VER0: u32 = 48;
    const SCHED_OTHER: u32 = 0;
    /// The one flag a `SCHED_OTHER` thread may carry that we must hand back.
    const SCHED_FLAG_RESET_ON_FORK: u64 = 0x01;

    #[cfg(target_arch = "x86_64")]
    const SYS_SCHED_SETATTR: i64 = 314;
    #[cfg(target_arch = "x86_64")]
    const SYS_SCHED_GETATTR: i64 = 315;
    #[cfg(target_arch = "aarch64")]
    const SYS_SCHED_SETATTR: i64 = 274;
    #[cfg(target_arch = "aarch64")]
    const SYS_SCHED_GETATTR: i64 = 275;
    #[cfg(target_arch = "x86")]
    const SYS_SCHED_SETATTR: i64 = 351;
    #[cfg(target_arch = "x86")]
    const SYS_SCHED_GETATTR: i64 = 352;
    #[cfg(target_arch = "arm")]
    const SYS_SCHED_SETATTR: i64 = 380;
    #[cfg(target_arch = "arm")]
    const SYS_SCHED_GETATTR: i64 = 381;

    // glibc and musl have no wrappers for these two calls (and the crate does
    // not depend on `libc`), so they go through `syscall(2)`.
    extern "C" {
        fn syscall(number: std::ffi::c_long, ...) -> std::ffi::c_long;
    }

    pub(super) fn get() -> Option<SchedAttr> {
        let mut attr = SchedAttr::default();
        // SAFETY: pid 0 is the calling thread; the kernel writes at most
        // `size` (48) bytes into `attr`, which is 48 bytes and live.
        let rc = unsafe {
            syscall(
                SYS_SCHED_GETATTR as std::ffi::c_long,
                0 as std::ffi::c_long,
                &mut attr as *mut SchedAttr,
                SCHED_ATTR_SIZE_VER0 as std::ffi::c_uint,
                0 as std::ffi::c_uint,
            )
        };
        (rc == 0).then_some(attr)
    }

    pub(super) fn request(slice_ns: u64) -> Option<u64> {
        let current = get()?;
        if current.sched_policy != SCHED_OTHER {
            return None;
        }
        let attr = SchedAttr {
            size: SCHED_ATTR_SIZE_VER0,
            sched_policy: SCHED_OTHER,
            sched_flags: current.sched_flags & SCHED_FLAG_RESET_ON_FORK,
            // The same nice value: never raises the thread's priority.
            sched_nice: current.sched_nice,
            sched_runtime: slice_ns,
            ..SchedAttr::default()
        };
        // SAFETY: pid 0 is the calling thread; the kernel reads `attr.size`
        // (48) bytes from a live 48-byte struct.
        let rc = unsafe {
            syscall(
                SYS_SCHED_SETATTR as std::ffi::c_long,
                0 as std::ffi::c_long,
                &attr as *const SchedAttr,
                0 as std::ffi::c_uint,
            )
        };
        if rc != 0 {
            tracing::debug!("eventcast: no short scheduler slice: {}", std::io::Error::last_os_error());
        }
        get().map(|a| a.sched_runtime)
    }
}

#[cfg(not(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64", target_arch = "x86", target_arch = "arm")
)))]
mod imp {
    pub(super) struct SchedAttr {
        pub(super) sched_runtime: u64,
    }
    pub(super) fn get() -> Option<SchedAttr> {
        None
    }
    pub(super) fn request(_slice_ns: u64) -> Option<u64> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The running kernel's (major, minor), from `/proc`.
    fn kernel() -> Option<(u32, u32)> {
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok()?;
        let mut parts = release.trim().split(|c: char| !c.is_ascii_digit());
        Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
    }

    /// Linux 6.12 and later report the requested slice back.
    #[test]
    fn a_thread_gets_the_short_slice_on_linux_6_12_and_later() {
        let Some(version) = kernel().filter(|&v| v >= (6, 12)) else {
            let reason = format!("custom scheduler slices need Linux 6.12+ (this is {:?})", kernel());
            crate::skip_report::skipped("a_thread_gets_the_short_slice_on_linux_6_12_and_later", &reason);
            return;
        };
        std::thread::spawn(move || {
            let before = current_slice().expect("sched_getattr");
            assert_ne!(before, DRIVER_SLICE_NS, "a new thread starts with the default slice ({version:?})");
            assert_eq!(request_short_slice(), Some(DRIVER_SLICE_NS));
            assert_eq!(current_slice(), Some(DRIVER_SLICE_NS));
        })
        .join()
        .unwrap();
    }

    /// The request never changes the thread's nice value (nor raises its priority).
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    #[test]
    fn the_nice_value_is_kept() {
        std::thread::spawn(|| {
            extern "C" {
                fn setpriority(which: i32, who: u32, prio: i32) -> i32;
                fn getpriority(which: i32, who: u32) -> i32;
            }
            // SAFETY: PRIO_PROCESS (0) with who 0 is the calling thread on
            // Linux; raising the nice value needs no privilege.
            unsafe { assert_eq!(setpriority(0, 0, 5), 0) };
            request_short_slice();
            // SAFETY: as above.
            assert_eq!(unsafe { getpriority(0, 0) }, 5);
        })
        .join()
        .unwrap();
    }
}
