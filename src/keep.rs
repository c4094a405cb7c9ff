//! The keep probability of a dropout layer.

use core::fmt;

use crate::{Element, Error};

/// The probability that dropout keeps a unit: a validated `f64` in `(0, 1]`.
///
/// Inverted dropout scales kept activations by `1 / keep`, so that the network needs no
/// change at test time. `KeepProb` is that `keep`, checked once here so the kernels never
/// see 0 (a division by zero), a negative value or NaN.
///
/// The sampler uses the value exactly as the binary fraction the `f64` holds: a unit is
/// kept with probability exactly [`get`](Self::get).
///
/// ```
/// use bitdrop::KeepProb;
///
/// let keep = KeepProb::new(0.8)?;
/// assert_eq!(keep.get(), 0.8);
/// // PyTorch's `nn.Dropout(p=0.5)` drops with probability p.
/// let half = KeepProb::from_drop_rate(0.5)?;
/// assert_eq!(half.get(), 0.5);
/// assert_eq!(half.scale(), 2.0);
/// assert!(KeepProb::new(0.0).is_err());
/// # Ok::<(), bitdrop::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct KeepProb(f64);

impl KeepProb {
    /// Keeps every unit: dropout switched off.
    pub const ONE: KeepProb = KeepProb(1.0);

    /// Validates a keep probability.
    ///
    /// # Errors
    ///
    /// [`Error::KeepProb`] unless `0 < keep <= 1`: zero, negatives, values above one,
    /// NaN and the infinities are rejected.
    ///
    /// ```
    /// use bitdrop::{Error, KeepProb};
    ///
    /// assert_eq!(KeepProb::new(0.5)?.get(), 0.5);
    /// assert_eq!(KeepProb::new(f64::NAN).unwrap_err().to_string(),
    ///            "keep probability must be in (0, 1], got NaN");
    /// # Ok::<(), Error>(())
    /// ```
    pub const fn new(keep: f64) -> Result<KeepProb, Error> {
        // Written so that NaN fails both comparisons.
        if keep > 0.0 && keep <= 1.0 {
            Ok(KeepProb(keep))
        } else {
            Err(Error::KeepProb { value: keep })
        }
    }

    /// Validates a drop rate `p` (PyTorch's `nn.Dropout(p)`) and returns `keep = 1 - p`.
    ///
    /// `1 - p` is rounded to the nearest `f64` (exact for `p >= 0.5`); [`get`](Self::get)
    /// reports the value the sampler uses.
    ///
    /// # Errors
    ///
    /// [`Error::DropRate`] unless `0 <= p < 1`.
    ///
    /// ```
    /// use bitdrop::KeepProb;
    ///
    /// assert_eq!(KeepProb::from_drop_rate(0.0)?, KeepProb::ONE);
    /// assert!(KeepProb::from_drop_rate(1.0).is_err());
    /// # Ok::<(), bitdrop::Error>(())
    /// ```
    pub const fn from_drop_rate(p: f64) -> Result<KeepProb, Error> {
        if p >= 0.0 && p < 1.0 {
            // p < 1 gives 1 - p >= 2^-53 > 0, and p >= 0 gives 1 - p <= 1.
            Ok(KeepProb(1.0 - p))
        } else {
            Err(Error::DropRate { value: p })
        }
    }

    /// The keep probability, in `(0, 1]`.
    ///
    /// ```
    /// assert_eq!(bitdrop::KeepProb::new(0.25)?.get(), 0.25);
    /// # Ok::<(), bitdrop::Error>(())
    /// ```
    pub const fn get(self) -> f64 {
        self.0
    }

    /// The drop rate `1 - keep`.
    ///
    /// ```
    /// assert_eq!(bitdrop::KeepProb::new(0.75)?.drop_rate(), 0.25);
    /// # Ok::<(), bitdrop::Error>(())
    /// ```
    pub const fn drop_rate(self) -> f64 {
        1.0 - self.0
    }

    /// The inverted-dropout scale `1 / keep` applied to kept units.
    ///
    /// ```
    /// assert_eq!(bitdrop::KeepProb::new(0.8)?.scale(), 1.25);
    /// # Ok::<(), bitdrop::Error>(())
    /// ```
    pub const fn scale(self) -> f64 {
        1.0 / self.0
    }

    /// `1 / keep` rounded to the kernels' element type.
    pub(crate) fn scale_as<T: Element>(self) -> T {
        T::from_f64(self.scale())
    }

    /// The binary expansion the sampler walks, most significant bit first.
    pub(crate) fn expansion(self) -> Expansion {
        let bits = self.0.to_bits();
        let biased_exp = ((bits >> 52) & 0x7ff) as i32;
        let fraction = bits & ((1 << 52) - 1);
        // keep = mantissa * 2^exp2, with mantissa an integer.
        let (mantissa, exp2) = if biased_exp == 0 {
            (fraction, -1074)
        } else {
            (fraction | (1 << 52), biased_exp - 1075)
        };
        // keep is positive, so the mantissa has a highest set bit.
        let top = 63 - mantissa.leading_zeros() as i32;
        // The highest 1 of keep has weight 2^(top + exp2) = 2^-(leading_zeros + 1).
        let leading_zeros = (-(top + exp2) - 1) as u32;
        let significant = (top - mantissa.trailing_zeros() as i32 + 1) as u32;
        Expansion {
            leading_zeros,
            significant_bits: mantissa << (63 - top),
            significant,
        }
    }
}

/// `keep < 1` in binary: `0.` then `leading_zeros` zeros, then the `significant` bits
/// held in `significant_bits` from bit 63 down; the first and the last of them are 1.
/// (`keep = 1` has no such form; the sampler handles it before asking for this.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Expansion {
    pub(crate) leading_zeros: u32,
    pub(crate) significant_bits: u64,
    pub(crate) significant: u32,
}

impl fmt::Display for KeepProb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl TryFrom<f64> for KeepProb {
    type Error = Error;

    /// Same as [`KeepProb::new`].
    fn try_from(keep: f64) -> Result<Self, Error> {
        KeepProb::new(keep)
    }
}

impl From<KeepProb> for f64 {
    fn from(keep: KeepProb) -> f64 {
        keep.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expansion_of_simple_fractions() {
        // 0.5 = 0.1b
        let e = KeepProb::new(0.5).unwrap().expansion();
        assert_eq!((e.leading_zeros, e.significant), (0, 1));
        assert_eq!(e.significant_bits, 1 << 63);
        // 0.75 = 0.11b
        let e = KeepProb::new(0.75).unwrap().expansion();
        assert_eq!((e.leading_zeros, e.significant), (0, 2));
        assert_eq!(e.significant_bits, 0b11 << 62);
        // 0.15625 = 0.00101b
        let e = KeepProb::new(0.15625).unwrap().expansion();
        assert_eq!((e.leading_zeros, e.significant), (2, 3));
        assert_eq!(e.significant_bits, 0b101 << 61);
        // The smallest subnormal is 2^-1074: 1073 zeros then a single 1.
        let e = KeepProb::new(f64::from_bits(1)).unwrap().expansion();
        assert_eq!((e.leading_zeros, e.significant), (1073, 1));
        // 0.1 has 53 significant bits after 3 zeros (0.0001100110011…).
        let e = KeepProb::new(0.1).unwrap().expansion();
        assert_eq!(e.leading_zeros, 3);
        assert!(e.significant <= 53);
    }
}
