//! Stack high-water marks: paint the stack below the caller with a pattern, run the call,
//! and find the lowest word that no longer holds the pattern.

use core::ptr;

/// The paint.
const PAINT: u32 = 0xdead_57ac;

/// The stack pointer (main stack; the firmware never switches to the process stack).
#[inline(always)]
fn sp() -> usize {
    cortex_m::register::msp::read() as usize
}

/// Stack bytes that `f` uses below this function's frame (its own frames, and the
/// return address and registers its call saves), measured over a painted window of
/// `window` bytes. Returns `None` when the whole window was used (raise `window`).
#[inline(never)]
pub fn used_by(window: usize, f: impl FnOnce()) -> Option<usize> {
    let top = sp() & !3;
    let bottom = top - window;
    // Nothing runs below `top` but this loop (no interrupts are enabled), and this
    // function's own locals live above it.
    for a in (bottom..top).step_by(4) {
        // SAFETY: `bottom .. top` is free stack below the current stack pointer
        // (`window` is small against the RAM size), word aligned.
        unsafe { ptr::write_volatile(a as *mut u32, PAINT) };
    }
    call(f);
    let mut a = bottom;
    // SAFETY: as above: the same words, read back.
    while a < top && unsafe { ptr::read_volatile(a as *const u32) } == PAINT {
        a += 4;
    }
    if a == bottom { None } else { Some(top - a) }
}

/// A real call, so that `f` cannot be inlined into the measuring frame.
#[inline(never)]
fn call(f: impl FnOnce()) {
    f()
}
