//! Instruction counts from SysTick.
//!
//! QEMU has no cycle model: without `-icount` its SysTick follows the host's clock. With
//! `-icount shift=0` every guest instruction advances virtual time by exactly 1 ns, and
//! SysTick (clocked by the core clock: 25 MHz on the MPS2 board) then ticks once per 40
//! instructions, exactly and reproducibly. [`Counter::new`] measures that ratio with a
//! loop of known length instead of trusting it, and each measurement runs the code
//! under test `reps` times, so the count per call has a resolution of
//! `instructions per tick / reps`.
//!
//! (QEMU does not model the DWT cycle counter: the bench image shows it staying at 0.)

use core::arch::asm;
use core::hint::black_box;

use cortex_m::peripheral::SYST;
use cortex_m::peripheral::syst::SystClkSource;

/// SysTick's counter is 24 bits wide.
const WRAP: u32 = 1 << 24;

/// SysTick running freely from its reload value, calibrated in instructions per tick.
pub struct Counter {
    /// Guest instructions per SysTick tick, measured.
    pub per_tick: f64,
    /// The ticks of the repetition loop alone, per measurement of `reps` calls.
    empty: u32,
    reps: u32,
}

/// Runs `n` iterations of a two-instruction loop (`subs`, `bne`): `2 n` instructions.
#[inline(never)]
pub fn spin(n: u32) {
    // SAFETY: only r0 (declared clobbered) and the flags change; no memory is touched.
    unsafe {
        asm!(
            "2:",
            "subs r0, r0, #1",
            "bne 2b",
            inout("r0") n => _,
            options(nomem, nostack),
        );
    }
}

fn now() -> u32 {
    SYST::get_current()
}

fn elapsed(start: u32, end: u32) -> u32 {
    // The counter counts down and wraps at 2^24.
    start.wrapping_sub(end) % WRAP
}

impl Counter {
    /// Starts SysTick from the core clock and calibrates it with a loop of known length.
    /// `reps` is the number of calls per measurement.
    pub fn new(mut syst: SYST, reps: u32) -> Counter {
        syst.disable_interrupt();
        syst.set_clock_source(SystClkSource::Core);
        syst.set_reload(WRAP - 1);
        syst.clear_current();
        syst.enable_counter();
        const LOOP: u32 = 500_000;
        let t0 = now();
        spin(LOOP);
        let ticks = elapsed(t0, now());
        let mut c = Counter {
            per_tick: if ticks == 0 {
                0.0
            } else {
                2.0 * LOOP as f64 / ticks as f64
            },
            empty: 0,
            reps,
        };
        c.empty = c.ticks(|| {
            black_box(());
        });
        c
    }

    /// Whether SysTick advanced at all.
    pub fn works(&self) -> bool {
        self.per_tick > 0.0
    }

    /// SysTick ticks of `reps` calls of `f`.
    #[inline(never)]
    pub fn ticks(&self, mut f: impl FnMut()) -> u32 {
        let t0 = now();
        for _ in 0..black_box(self.reps) {
            f();
        }
        elapsed(t0, now())
    }

    /// Instructions per call of `f`, the repetition loop's own subtracted.
    pub fn per_call(&self, f: impl FnMut()) -> f64 {
        let ticks = self.ticks(f).saturating_sub(self.empty);
        ticks as f64 * self.per_tick / self.reps as f64
    }
}
