//! Small reading helpers over minicbor's `Decoder`, shared by the TEEP, SUIT and EAT decoders
//! (each maps the minicbor error onto its own typed error).

use minicbor::Decoder;
use minicbor::data::Type;
use minicbor::decode::Error;

/// Whether `ty` is a CBOR integer (major type 0 or 1) of any width; minicbor reports
/// negative integers below `i64::MIN` as `Type::Int`.
#[must_use]
pub const fn is_int(ty: Type) -> bool {
    matches!(
        ty,
        Type::U8
            | Type::U16
            | Type::U32
            | Type::U64
            | Type::I8
            | Type::I16
            | Type::I32
            | Type::I64
            | Type::Int
    )
}

/// Skips the next item and returns its encoded bytes (head included).
///
/// # Errors
/// Whatever `Decoder::skip` reports for a malformed or truncated item.
pub fn raw_item<'b>(d: &mut Decoder<'b>) -> Result<&'b [u8], Error> {
    let start = d.position();
    d.skip()?;
    let end = d.position();
    d.input()
        .get(start..end)
        .ok_or_else(|| Error::message("item out of range"))
}

/// The length of a map or array header, refusing indefinite lengths (`None` from
/// `Decoder::map` / `Decoder::array`).
///
/// # Errors
/// A message error when the length is indefinite.
pub fn definite(len: Option<u64>) -> Result<u64, Error> {
    len.ok_or_else(|| Error::message("indefinite length"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_of_every_width_and_sign_are_ints() {
        // 1, 24, 256, 65536, 2^32, -1, -25, -257, -65537, -2^32 - 1, -2^64
        let items: [&[u8]; 11] = [
            &[0x01],
            &[0x18, 24],
            &[0x19, 1, 0],
            &[0x1a, 0, 1, 0, 0],
            &[0x1b, 0, 0, 0, 1, 0, 0, 0, 0],
            &[0x20],
            &[0x38, 24],
            &[0x39, 1, 0],
            &[0x3a, 0, 1, 0, 0],
            &[0x3b, 0, 0, 0, 1, 0, 0, 0, 0],
            &[0x3b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
        ];
        for item in items {
            let ty = Decoder::new(item).datatype().unwrap();
            assert!(is_int(ty), "{item:02x?} is {ty:?}");
        }
        for item in [&[0x40u8][..], &[0x60], &[0xf4], &[0xc1, 0x00], &[0x80]] {
            assert!(
                !is_int(Decoder::new(item).datatype().unwrap()),
                "{item:02x?}"
            );
        }
    }

    #[test]
    fn raw_item_returns_the_whole_item_and_advances() {
        let input = [0x82, 0x01, 0x41, 0xaa, 0x05];
        let mut d = Decoder::new(&input);
        assert_eq!(raw_item(&mut d).unwrap(), &input[..4]);
        assert_eq!(d.position(), 4);
        assert!(raw_item(&mut Decoder::new(&[0x82, 0x01])).is_err());
    }

    #[test]
    fn indefinite_lengths_are_refused() {
        assert_eq!(definite(Some(3)).unwrap(), 3);
        assert!(definite(None).is_err());
    }
}
