//! The on-target test firmware: `cargo run --release` (Cortex-M4F on QEMU's MPS2 AN386)
//! or `cargo run-m0` (Cortex-M0 on QEMU's micro:bit).
//!
//! Runs the sampler checks, every layer operation against the reference and a small
//! training run, prints one `pass:`/`FAIL:` line per check through semihosting, closes
//! with `firmware: N passed, N failed`, and exits QEMU with status 0 only if nothing
//! failed (a panic exits with status 1 too, through `panic-semihosting`'s `exit`).

#![no_std]
#![no_main]

use core::ptr::addr_of_mut;

use bitdrop_embedded::layers::{self, Buffers};
use bitdrop_embedded::train::{self, Net};
use bitdrop_embedded::{CORE, Report, sampler, say, stack};
use cortex_m_rt::entry;
use panic_semihosting as _;

static mut LAYER_BUFFERS: Buffers = Buffers::new();
static mut NET: Net = Net::new();

#[entry]
fn main() -> ! {
    let free = stack::paint_free();
    say!("bitdrop firmware on {}", CORE);
    // SAFETY: `main` runs once and is the only code that names these statics, so the
    // two references are unique for the rest of the program.
    let (buffers, net) = unsafe { (&mut *addr_of_mut!(LAYER_BUFFERS), &mut *addr_of_mut!(NET)) };
    let mut report = Report::new();
    sampler::run(&mut report);
    layers::run(&mut report, buffers);
    train::run(&mut report, net);
    let (peak, intact) = free.peak();
    report.check(
        intact,
        format_args!(
            "stack: peak {} of {} bytes between the statics and the stack top",
            peak,
            free.available()
        ),
    );
    report.finish()
}
