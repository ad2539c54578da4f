//! Reading CBOR heads (RFC 8949 §3) and deciding what "shortest" means for them.

use crate::{CborError, CborErrorKind};

/// Additional information that marks an indefinite length (or, in major type 7, "break").
pub(crate) const AI_INDEFINITE: u8 = 31;
/// The "break" stop code that ends an indefinite-length item.
pub(crate) const BREAK: u8 = 0xff;

/// One decoded head: major type, additional information and its argument.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Head {
    pub major: u8,
    pub ai: u8,
    /// The argument; 0 when `ai` is [`AI_INDEFINITE`].
    pub arg: u64,
    /// Bytes taken by the head itself.
    pub len: usize,
}

impl Head {
    pub(crate) const fn is_indefinite(&self) -> bool {
        self.ai == AI_INDEFINITE
    }

    /// Whether an integer, length or tag argument uses the shortest encoding
    /// (RFC 8949 §4.1). Not meaningful for major type 7, whose widths encode float types.
    pub(crate) const fn is_shortest(&self) -> bool {
        match self.ai {
            24 => self.arg >= 24,
            25 => self.arg > 0xff,
            26 => self.arg > 0xffff,
            27 => self.arg > 0xffff_ffff,
            _ => true,
        }
    }
}

/// Reads the head at `pos`. Rejects reserved additional information (28..30) here, because
/// no major type gives it a meaning.
pub(crate) fn read_head(bytes: &[u8], pos: usize) -> Result<Head, CborError> {
    let truncated = CborError::new(pos, CborErrorKind::Truncated);
    let initial = *bytes.get(pos).ok_or(truncated)?;
    let major = initial >> 5;
    let ai = initial & 0x1f;
    let arg_at = pos.checked_add(1).ok_or(truncated)?;
    let (arg, arg_len) = match ai {
        0..=23 => (u64::from(ai), 0),
        24 => (u64::from(*bytes.get(arg_at).ok_or(truncated)?), 1),
        25 => (
            u64::from(u16::from_be_bytes(
                array_at(bytes, arg_at).ok_or(truncated)?,
            )),
            2,
        ),
        26 => (
            u64::from(u32::from_be_bytes(
                array_at(bytes, arg_at).ok_or(truncated)?,
            )),
            4,
        ),
        27 => (
            u64::from_be_bytes(array_at(bytes, arg_at).ok_or(truncated)?),
            8,
        ),
        AI_INDEFINITE => (0, 0),
        _ => return Err(CborError::new(pos, CborErrorKind::ReservedAdditionalInfo)),
    };
    Ok(Head {
        major,
        ai,
        arg,
        len: 1 + arg_len,
    })
}

fn array_at<const N: usize>(bytes: &[u8], pos: usize) -> Option<[u8; N]> {
    bytes.get(pos..pos.checked_add(N)?)?.try_into().ok()
}

/// The content of the definite-length string whose head `head` starts at `start`, and the
/// offset just past it.
pub(crate) fn definite_content<'a>(
    bytes: &'a [u8],
    start: usize,
    head: &Head,
) -> Result<(&'a [u8], usize), CborError> {
    let truncated = CborError::new(start, CborErrorKind::Truncated);
    let from = start.checked_add(head.len).ok_or(truncated)?;
    let len = usize::try_from(head.arg).map_err(|_| truncated)?;
    let to = from.checked_add(len).ok_or(truncated)?;
    let content = bytes.get(from..to).ok_or(truncated)?;
    Ok((content, to))
}

/// The half-precision float that holds exactly the single-precision float `bits`, if any.
/// NaN payloads count as part of the value (RFC 8949 §4.1 keeps them).
pub(crate) const fn f32_to_f16_exact(bits: u32) -> Option<u16> {
    let sign = ((bits >> 16) & 0x8000) as u16;
    let exp = (bits >> 23) & 0xff;
    let mant = bits & 0x7f_ffff;
    if exp == 0xff {
        // Infinity or NaN: the payload must survive dropping 13 mantissa bits.
        return if mant & 0x1fff == 0 {
            Some(sign | 0x7c00 | (mant >> 13) as u16)
        } else {
            None
        };
    }
    if exp == 0 {
        // Zero fits; f32 subnormals are far below the smallest f16 subnormal.
        return if mant == 0 { Some(sign) } else { None };
    }
    let e = exp as i32 - 127;
    if e > 15 || e < -24 {
        return None;
    }
    if e >= -14 {
        return if mant & 0x1fff == 0 {
            Some(sign | (((e + 15) as u16) << 10) | (mant >> 13) as u16)
        } else {
            None
        };
    }
    // f16 subnormal: value = k * 2^-24, so the full significand shifted right by
    // (-e - 1) must lose no bits.
    let sig = mant | 0x80_0000;
    let shift = (-e - 1) as u32;
    if sig & ((1 << shift) - 1) == 0 {
        Some(sign | (sig >> shift) as u16)
    } else {
        None
    }
}

/// The single-precision float that holds exactly the double-precision float `bits`, if any.
pub(crate) const fn f64_to_f32_exact(bits: u64) -> Option<u32> {
    let sign = ((bits >> 32) & 0x8000_0000) as u32;
    let exp = (bits >> 52) & 0x7ff;
    let mant = bits & 0xf_ffff_ffff_ffff;
    const DROPPED: u64 = (1 << 29) - 1;
    if exp == 0x7ff {
        return if mant & DROPPED == 0 {
            Some(sign | 0x7f80_0000 | (mant >> 29) as u32)
        } else {
            None
        };
    }
    if exp == 0 {
        return if mant == 0 { Some(sign) } else { None };
    }
    let e = exp as i64 - 1023;
    if e > 127 || e < -149 {
        return None;
    }
    if e >= -126 {
        return if mant & DROPPED == 0 {
            Some(sign | (((e + 127) as u32) << 23) | (mant >> 29) as u32)
        } else {
            None
        };
    }
    // f32 subnormal: value = k * 2^-149.
    let sig = mant | (1 << 52);
    let shift = (-e - 97) as u32;
    if sig & ((1 << shift) - 1) == 0 {
        Some(sign | (sig >> shift) as u32)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn every_f16_round_trips_through_f32() {
        for h in 0..=u16::MAX {
            let f = half::f16::from_bits(h);
            if f.is_nan() {
                continue; // `half` may quieten NaNs; NaN payloads are tested below.
            }
            assert_eq!(
                f32_to_f16_exact(f.to_f32().to_bits()),
                Some(h),
                "f16 {h:#06x}"
            );
        }
    }

    #[test]
    fn nan_payloads_narrow_only_when_kept() {
        assert_eq!(f32_to_f16_exact(0x7fc0_0000), Some(0x7e00));
        assert_eq!(f32_to_f16_exact(0x7fc0_0001), None);
        assert_eq!(f64_to_f32_exact(0x7ff8_0000_0000_0000), Some(0x7fc0_0000));
        assert_eq!(f64_to_f32_exact(0x7ff8_0000_0000_0001), None);
        assert_eq!(f64_to_f32_exact(0xfff0_0000_0000_0000), Some(0xff80_0000));
    }

    proptest! {
        #[test]
        fn f32_narrows_exactly_when_half_agrees(bits in any::<u32>()) {
            let x = f32::from_bits(bits);
            prop_assume!(!x.is_nan());
            let h = half::f16::from_f32(x);
            let exact = h.to_f32().to_bits() == bits;
            prop_assert_eq!(f32_to_f16_exact(bits), exact.then(|| h.to_bits()));
        }

        #[test]
        fn f64_narrows_exactly_when_cast_agrees(bits in any::<u64>()) {
            let x = f64::from_bits(bits);
            prop_assume!(!x.is_nan());
            let s = x as f32;
            let exact = f64::from(s).to_bits() == bits;
            prop_assert_eq!(f64_to_f32_exact(bits), exact.then(|| s.to_bits()));
        }

        #[test]
        fn narrow_f32_values_are_found(h in any::<u16>()) {
            let f = half::f16::from_bits(h);
            prop_assume!(!f.is_nan());
            let wide = f64::from(f.to_f32()).to_bits();
            let narrow = f64_to_f32_exact(wide).and_then(f32_to_f16_exact);
            prop_assert_eq!(narrow, Some(h));
        }
    }
}
