//! Just enough deterministic CBOR writing for the hot path (Sig_structure, COSE_Sign1,
//! COSE_Key): writing heads by hand lets each structure be built in one allocation of
//! the exact size instead of through a `Value` tree.
use alloc::vec::Vec;

pub(crate) const MAJOR_UINT: u8 = 0;
pub(crate) const MAJOR_NINT: u8 = 1;
pub(crate) const MAJOR_BSTR: u8 = 2;
pub(crate) const MAJOR_TSTR: u8 = 3;
pub(crate) const MAJOR_ARRAY: u8 = 4;
pub(crate) const MAJOR_MAP: u8 = 5;
pub(crate) const MAJOR_TAG: u8 = 6;
/// The simple value `null` (payload of a detached COSE_Sign1).
pub(crate) const NULL: u8 = 0xf6;

/// Length in bytes of the shortest head carrying `value`.
pub(crate) const fn head_len(value: u64) -> usize {
    if value < 24 {
        1
    } else if value <= 0xff {
        2
    } else if value <= 0xffff {
        3
    } else if value <= 0xffff_ffff {
        5
    } else {
        9
    }
}

/// Appends the shortest (preferred) head for `major` and `value`.
pub(crate) fn push_head(out: &mut Vec<u8>, major: u8, value: u64) {
    let m = major << 5;
    let bytes = value.to_be_bytes();
    match head_len(value) {
        1 => out.push(m | bytes[7]),
        2 => {
            out.push(m | 24);
            out.push(bytes[7]);
        }
        3 => {
            out.push(m | 25);
            out.extend_from_slice(&bytes[6..]);
        }
        5 => {
            out.push(m | 26);
            out.extend_from_slice(&bytes[4..]);
        }
        _ => {
            out.push(m | 27);
            out.extend_from_slice(&bytes);
        }
    }
}

/// Size of a byte string item holding `len` bytes.
pub(crate) const fn bstr_len(len: usize) -> usize {
    head_len(len as u64) + len
}

pub(crate) fn push_bstr(out: &mut Vec<u8>, data: &[u8]) {
    push_head(out, MAJOR_BSTR, data.len() as u64);
    out.extend_from_slice(data);
}

pub(crate) fn push_int(out: &mut Vec<u8>, value: i64) {
    if value >= 0 {
        push_head(out, MAJOR_UINT, value.unsigned_abs());
    } else {
        push_head(out, MAJOR_NINT, (-1 - value).unsigned_abs());
    }
}

/// Size of an integer item.
pub(crate) const fn int_len(value: i64) -> usize {
    if value >= 0 {
        head_len(value.unsigned_abs())
    } else {
        head_len((-1 - value).unsigned_abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_are_preferred_and_sized_right() {
        for (value, expect) in [
            (0u64, &[0x40u8][..]),
            (23, &[0x57]),
            (24, &[0x58, 24]),
            (256, &[0x59, 1, 0]),
            (65536, &[0x5a, 0, 1, 0, 0]),
            (1 << 32, &[0x5b, 0, 0, 0, 1, 0, 0, 0, 0]),
        ] {
            let mut out = Vec::new();
            push_head(&mut out, MAJOR_BSTR, value);
            assert_eq!(out, expect);
            assert_eq!(head_len(value), expect.len());
        }
        let mut out = Vec::new();
        push_int(&mut out, -9);
        push_int(&mut out, -35);
        push_int(&mut out, 33);
        assert_eq!(out, [0x28, 0x38, 0x22, 0x18, 0x21]);
        assert_eq!(int_len(-35) + int_len(-9) + int_len(33), 5);
    }
}
