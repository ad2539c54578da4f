//! Small CBOR helpers shared by the Evidence and EAR codecs.
//!
//! Encoding always goes to a `Vec<u8>`, whose writer cannot fail, so the encoders below
//! return plain values; decoding maps every minicbor failure onto one typed error.

use alloc::vec::Vec;
use core::convert::Infallible;

use minicbor::{Decoder, Encoder};
use teep_cbor::read::is_int;

/// An encoder over a growable buffer: its only error is a custom message, which we never use.
pub(crate) type VecEncoder<'a> = Encoder<&'a mut Vec<u8>>;
pub(crate) type EncodeResult = Result<(), minicbor::encode::Error<Infallible>>;

/// Runs `f` on a fresh encoder and returns the bytes it wrote.
pub(crate) fn encode_with(f: impl FnOnce(&mut VecEncoder<'_>) -> EncodeResult) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing into a Vec is infallible and no Encode impl of ours raises a custom error,
    // so the result carries no information.
    let _ = f(&mut Encoder::new(&mut out));
    out
}

/// Reads a map key: `Some` for an integer key that fits an i64, `None` (key consumed) for
/// any other key, which no claim this crate knows uses.
pub(crate) fn int_key(d: &mut Decoder<'_>) -> Result<Option<i64>, minicbor::decode::Error> {
    if is_int(d.datatype()?) {
        Ok(i64::try_from(d.int()?).ok())
    } else {
        d.skip().map(|()| None)
    }
}
