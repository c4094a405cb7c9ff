//! Instruction-set levels: forcing one runs it, an unavailable one is an error, and the
//! environment can force (`BITDROP_FORCE`) and demand (`BITDROP_ENSURE`) levels.
#![cfg(feature = "std")]

use bitdrop::{Error, Level, with_level};

const ALL: [Level; 4] = [Level::Scalar, Level::Avx2, Level::Avx512, Level::Neon];

#[test]
fn every_available_level_can_be_forced() {
    assert!(Level::Scalar.is_available());
    assert!(Level::best().is_available());
    for level in Level::available() {
        assert_eq!(with_level(level, Level::current), Ok(level));
        // Nested calls restore the outer level.
        with_level(level, || {
            with_level(Level::Scalar, || {
                assert_eq!(Level::current(), Level::Scalar)
            })
            .unwrap();
            assert_eq!(Level::current(), level);
        })
        .unwrap();
    }
}

#[test]
fn an_unavailable_level_is_an_error() {
    for level in ALL.into_iter().filter(|l| !l.is_available()) {
        assert_eq!(
            with_level(level, || unreachable!("must not run")),
            Err(Error::LevelUnavailable { level })
        );
    }
    assert_eq!("sse9".parse::<Level>(), Err(Error::UnknownLevel));
    for level in ALL {
        assert_eq!(level.name().parse::<Level>(), Ok(level));
    }
}

/// `BITDROP_FORCE=avx2 cargo test --test levels` fails unless AVX2 is what ran.
#[test]
fn the_forced_level_is_the_one_in_force() {
    if let Ok(name) = std::env::var("BITDROP_FORCE") {
        let forced: Level = name.parse().expect("BITDROP_FORCE names a level");
        assert_eq!(
            Level::current(),
            forced,
            "BITDROP_FORCE={name} did not take effect"
        );
    }
}

/// `BITDROP_ENSURE=avx2,avx512` fails unless each named level can run here, so a CI
/// machine that silently lost a feature shows it.
#[test]
fn ensured_levels_are_available() {
    if let Ok(names) = std::env::var("BITDROP_ENSURE") {
        for name in names.split(',').filter(|n| !n.is_empty()) {
            let level: Level = name.trim().parse().expect("BITDROP_ENSURE names levels");
            assert!(
                level.is_available(),
                "{level} is not available on this machine"
            );
        }
    }
}
