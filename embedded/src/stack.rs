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

unsafe extern "C" {
    /// End of `.bss` (cortex-m-rt's `link.x`): the stack may grow down to here.
    static __ebss: u32;
    /// Where the stack starts (top of RAM, or what `--defsym` set).
    static _stack_start: u32;
}

/// The free RAM between the statics and the stack, painted by [`paint_free`].
pub struct Free {
    bottom: usize,
    top: usize,
}

impl Free {
    /// Bytes the stack may use in all: from its start down to the end of `.bss`.
    pub fn available(&self) -> usize {
        self.top - self.bottom
    }

    /// The deepest the stack has reached since painting, in bytes below its start, and
    /// whether the lowest painted word is still intact (no overflow into the statics).
    pub fn peak(&self) -> (usize, bool) {
        let mut a = self.bottom;
        // SAFETY: the painted words, below any live frame's data or in frames since
        // released; read as plain words.
        while a < self.top && unsafe { ptr::read_volatile(a as *const u32) } == PAINT {
            a += 4;
        }
        (self.top - a, a > self.bottom)
    }
}

/// Paints the RAM between the end of `.bss` and 64 bytes below the current stack pointer;
/// call it first thing in `main`.
#[inline(never)]
pub fn paint_free() -> Free {
    let bottom = (&raw const __ebss) as usize;
    let top = (&raw const _stack_start) as usize;
    let limit = (sp() - 64) & !3;
    for a in (bottom..limit).step_by(4) {
        // SAFETY: free RAM: above the statics, below this function's frame.
        unsafe { ptr::write_volatile(a as *mut u32, PAINT) };
    }
    Free { bottom, top }
}
