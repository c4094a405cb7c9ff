//! Pass and fail lines, and the counts the firmware's exit status comes from.

use crate::say;

/// Counts the checks that passed and failed.
#[derive(Debug, Default)]
pub struct Report {
    passed: u32,
    failed: u32,
}

impl Report {
    /// No checks yet.
    pub const fn new() -> Report {
        Report {
            passed: 0,
            failed: 0,
        }
    }

    /// Records a passed check and prints its line.
    pub fn pass(&mut self, args: core::fmt::Arguments<'_>) {
        self.passed += 1;
        say!("pass: {}", args);
    }

    /// Records a failed check and prints its line.
    pub fn fail(&mut self, args: core::fmt::Arguments<'_>) {
        self.failed += 1;
        say!("FAIL: {}", args);
    }

    /// Records `ok` with the same text either way.
    pub fn check(&mut self, ok: bool, args: core::fmt::Arguments<'_>) {
        if ok { self.pass(args) } else { self.fail(args) }
    }

    /// Checks passed so far.
    pub fn passed(&self) -> u32 {
        self.passed
    }

    /// Checks failed so far.
    pub fn failed(&self) -> u32 {
        self.failed
    }

    /// Prints the closing line (`N passed, N failed`) and exits QEMU through semihosting:
    /// status 0 when nothing failed and something ran, 1 otherwise.
    pub fn finish(&self) -> ! {
        say!("firmware: {} passed, {} failed", self.passed, self.failed);
        let ok = self.failed == 0 && self.passed > 0;
        exit(ok)
    }
}

/// Ends the QEMU process with status 0 (`ok`) or 1.
pub fn exit(ok: bool) -> ! {
    use cortex_m_semihosting::debug;
    debug::exit(if ok {
        debug::EXIT_SUCCESS
    } else {
        debug::EXIT_FAILURE
    });
    // Only reached without a semihosting host (on hardware with no debugger).
    loop {
        cortex_m::asm::wfi();
    }
}
