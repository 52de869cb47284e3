//! PID 1's memory allocator, safe for the processes libcontainer clones.
//!
//! libcontainer creates a container's processes with the raw `clone3`
//! system call, from PID 1's launcher thread. The child is a copy of that
//! one thread; glibc's fork handlers, which make `malloc` consistent in a
//! child of `fork(3)`, do not run. A malloc lock that PID 1's loop thread
//! held at that instant (it allocates all the time, a line of container
//! output after another) stays locked forever in the child, and the first
//! allocation that needs it hangs the launch.
//!
//! So the launcher thread is marked ([`mark_launcher_thread`]), and an
//! allocation made on a marked thread in a process other than PID 1 (a
//! copy of the launcher thread in a cloned child) takes memory from fresh
//! anonymous mappings of its own instead, with no lock, and never frees it.
//! Those children are short-lived: they `exec` the container's program or
//! exit within moments. The launcher thread itself pays one `gettid` per
//! allocation; the loop thread nothing.
//!
//! A child is told apart by its thread id, not its pid: a workload's init,
//! cloned into a new PID namespace, is pid 1 there, as PID 1 is here.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

thread_local! {
    /// The thread id of the launcher thread, set on that thread only (0:
    /// not marked). A child cloned from it inherits the value but has a
    /// thread id of its own: a fresh one, or 1 as the first process of a
    /// new PID namespace (a workload's init). A pid would not do: in its
    /// namespace, a workload's init is pid 1, as PID 1 is.
    static MARK: Cell<i32> = const { Cell::new(0) };
}

/// The child's current mapping: next free byte and end. A child is a
/// single thread, so plain loads and stores suffice; the atomics only
/// make the statics safe to declare.
static NEXT: AtomicUsize = AtomicUsize::new(0);
static END: AtomicUsize = AtomicUsize::new(0);

/// A child's mappings are at least this big.
const CHUNK: usize = 1 << 20;

/// Marks the calling thread as the one children are cloned from.
pub fn mark_launcher_thread() {
    // SAFETY: gettid(2) has no preconditions and cannot fail.
    MARK.with(|m| m.set(unsafe { libc::gettid() }));
}

/// Whether this is a child cloned from the launcher thread.
pub fn in_cloned_child() -> bool {
    let mark = MARK.with(Cell::get);
    // SAFETY: gettid(2) has no preconditions and cannot fail; glibc asks
    // the kernel each time, so a raw clone's child sees its own.
    mark != 0 && unsafe { libc::gettid() } != mark
}

/// PID 1's allocator: glibc's, except in a cloned child.
#[derive(Debug)]
pub struct Pid1Alloc;

// SAFETY: outside a cloned child every call goes to `System` unchanged. In
// a cloned child, `bump` returns memory from private anonymous mappings
// that nothing else uses, aligned as asked and never handed out twice;
// freeing it is a no-op, which `GlobalAlloc` allows (it leaks).
unsafe impl GlobalAlloc for Pid1Alloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if in_cloned_child() {
            return bump(layout);
        }
        // SAFETY: the caller's contract for `alloc` passes through.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if in_cloned_child() {
            // Fresh anonymous mappings are zero and never reused.
            return bump(layout);
        }
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if in_cloned_child() {
            return;
        }
        // SAFETY: outside a cloned child every block came from `System`
        // (a child's memory is its own copy; PID 1 never sees its blocks).
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if in_cloned_child() {
            let Ok(new) = Layout::from_size_align(new_size, layout.align()) else {
                return std::ptr::null_mut();
            };
            let to = bump(new);
            if !to.is_null() {
                // SAFETY: `ptr` is valid for `layout.size()` bytes (the
                // caller's contract), `to` for `new_size`, and they do not
                // overlap (`to` is fresh).
                unsafe { std::ptr::copy_nonoverlapping(ptr, to, layout.size().min(new_size)) };
            }
            return to;
        }
        // SAFETY: as for `dealloc`, and the caller's contract for
        // `realloc` passes through.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Takes `layout` from the child's mapping, mapping more when it is full;
/// null when the kernel refuses.
fn bump(layout: Layout) -> *mut u8 {
    let align = layout.align().max(16);
    let mut start = NEXT.load(Ordering::Relaxed).next_multiple_of(align);
    if start == 0 || start + layout.size() > END.load(Ordering::Relaxed) {
        let len = (layout.size() + align).max(CHUNK).next_multiple_of(4096);
        // SAFETY: an anonymous private mapping at an address the kernel
        // picks; no existing memory is touched.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return std::ptr::null_mut();
        }
        let base = p as usize;
        END.store(base + len, Ordering::Relaxed);
        start = base.next_multiple_of(align);
    }
    NEXT.store(start + layout.size(), Ordering::Relaxed);
    start as *mut u8
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Forks from a marked thread (into a new PID namespace when asked,
    /// where the child is pid 1 as a workload's init is) and returns
    /// whether the child saw itself as a cloned child and allocated from
    /// its own mapping.
    fn child_allocates_on_its_own(new_pid_namespace: bool) -> bool {
        // A thread of its own, so the test harness's threads stay unmarked
        // (and unshare(CLONE_NEWPID) applies to this thread's children).
        let got = std::thread::spawn(move || {
            mark_launcher_thread();
            assert!(!in_cloned_child(), "PID 1's own launcher thread");
            if new_pid_namespace {
                nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWPID)
                    .expect("unshare(CLONE_NEWPID) (needs root)");
            }
            let mut pipe = [0; 2];
            // SAFETY: a two-int array for pipe(2).
            assert_eq!(unsafe { libc::pipe(pipe.as_mut_ptr()) }, 0);
            // SAFETY: the child only allocates through `bump` (it is a
            // cloned child of a marked thread), writes one byte and
            // leaves with _exit.
            match unsafe { libc::fork() } {
                0 => {
                    let ok = in_cloned_child() && {
                        let v: Vec<u64> = (0..100_000).collect();
                        let s = format!("{}", v.iter().sum::<u64>());
                        let addr = v.as_ptr() as usize;
                        let end = END.load(Ordering::Relaxed);
                        s == "4999950000" && addr < end && addr >= end - (64 << 20)
                    };
                    // SAFETY: write(2) of one byte from a local, then _exit.
                    unsafe {
                        libc::write(pipe[1], [u8::from(ok)].as_ptr().cast(), 1);
                        libc::_exit(0)
                    }
                }
                -1 => panic!("fork"),
                pid => {
                    let mut b = [0u8];
                    // SAFETY: read(2) into a local; waitpid on our child.
                    unsafe {
                        libc::read(pipe[0], b.as_mut_ptr().cast(), 1);
                        libc::waitpid(pid, std::ptr::null_mut(), 0);
                        libc::close(pipe[0]);
                        libc::close(pipe[1]);
                    }
                    b[0]
                }
            }
        })
        .join()
        .expect("thread");
        got == 1
    }

    #[test]
    fn a_child_of_a_marked_thread_allocates_from_its_own_mappings() {
        assert!(child_allocates_on_its_own(false));
    }

    #[test]
    fn so_does_a_child_that_is_pid_1_of_a_new_pid_namespace() {
        assert!(child_allocates_on_its_own(true));
    }
}
