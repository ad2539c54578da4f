//! Small CBOR helpers shared by the Evidence and EAR codecs, over teep-cbor's
//! [`Reader`](teep_cbor::read::Reader) and counting encoders.

use minicbor::bytes::ByteSlice;
use teep_cbor::read::{ReadError, ReadErrorKind, Reader};

/// A byte slice that minicbor encodes as a byte string (not as an array of integers).
pub(crate) fn bstr(bytes: &[u8]) -> &ByteSlice {
    bytes.into()
}

/// Reads a map key: `Some` for an integer key that fits an i64, `None` (key consumed) for
/// any other key, which no claim this crate knows uses.
pub(crate) fn int_key<F: Copy>(r: &mut Reader<'_>, field: F) -> Result<Option<i64>, ReadError<F>> {
    if r.is_int() {
        match r.i64(field) {
            Ok(key) => return Ok(Some(key)),
            Err(e) if e.kind != ReadErrorKind::OutOfRange => return Err(e),
            Err(_) => {}
        }
    }
    r.skip(field).map(|()| None)
}
