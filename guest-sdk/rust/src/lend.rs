//! Lending keyed state to the host without a copy (in a component only).
//!
//! A snapshot returns each key group's entries as a `list<u8>`, and [`KeyMap`] already holds
//! them in that encoding: the snapshot hands out its buffers as they are, and the host copies
//! them out of the guest's memory. But the canonical ABI's post-return then frees every list
//! the call returned, and these buffers still hold the state. So the guest's allocator (this
//! module's, the system one otherwise) does not free a lent buffer: it only forgets the loan.
//! That saves a copy of the whole keyed state in the guest at every checkpoint — its time,
//! and as much memory again as the state takes.
//!
//! [`KeyMap`]: crate::key_map::KeyMap

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Mutex;

/// The system allocator, except that it does not free lent buffers.
pub struct LendingAllocator;

/// The addresses of the buffers lent and not given back yet. Code holding the lock never
/// frees memory (a push grows the `Vec` by `realloc`, which does not take it), so that
/// `dealloc` can take it.
static LENT: Mutex<Vec<usize>> = Mutex::new(Vec::new());

/// A `Vec` over `bytes` without copying them, to return to the host from a component
/// export. Its drop frees nothing: it is a loan, over when the `Vec` is dropped (by the
/// canonical ABI's post-return, or if the snapshot fails before it is returned).
///
/// # Safety
///
/// `bytes` must stay in place and unchanged until the returned `Vec` is dropped (the guest
/// runs one call at a time: the state is not touched before post-return), and the `Vec` must
/// not be grown or shrunk (the canonical ABI lowering reads its pointer and length; its
/// capacity is its length, so `into_boxed_slice` keeps it in place).
pub(crate) unsafe fn lend(bytes: &[u8]) -> Vec<u8> {
    if bytes.is_empty() {
        return Vec::new();
    }
    LENT.lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(bytes.as_ptr() as usize);
    // SAFETY: the pointer and length are those of `bytes`, which the caller keeps in place
    // until the `Vec` is dropped; the allocator never frees it (`at` is in `LENT`).
    unsafe { Vec::from_raw_parts(bytes.as_ptr().cast_mut(), bytes.len(), bytes.len()) }
}

/// Ends the loan of the buffer at `ptr`, if it is lent.
fn given_back(ptr: *mut u8) -> bool {
    let mut lent = LENT.lock().unwrap_or_else(|e| e.into_inner());
    match lent.iter().position(|&at| at == ptr as usize) {
        Some(i) => {
            lent.swap_remove(i);
            true
        }
        None => false,
    }
}

// SAFETY: every call goes to the system allocator, except the `dealloc` of a lent buffer,
// which frees nothing (its owner frees it later, through this allocator, once the loan is
// over).
unsafe impl GlobalAlloc for LendingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if !given_back(ptr) {
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // A lent `Vec` is never resized (see `lend`): this is an owner's buffer.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}
