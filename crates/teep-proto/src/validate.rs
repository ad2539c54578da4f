//! The CDDL controls that types cannot express, checked identically by the decoder
//! (which rejects) and the encoder (which refuses).

use crate::error::Violation;
use crate::numbering::{Field, Numbering};
use crate::types::{ErrCode, RequestedTcInfo, SystemPropertyClaims};

/// `.size` ranges ([`Field::size_limits`]); fields without one always pass.
pub(crate) fn size(field: Field, len: usize) -> Result<(), Violation> {
    match field.size_limits() {
        Some((min, max)) if len < min || len > max => Err(Violation::Size { field, len }),
        _ => Ok(()),
    }
}

/// Lists the CDDL writes `[+ ...]` must not be empty, except the three of spec §16.4
/// (tc-list, ext-list, unneeded-manifest-list), which an Agent with nothing to report
/// must still be able to send because the TAM's data-item bits make them mandatory.
/// A SUIT_Component_Identifier is `[* bstr]` and may be empty too.
pub(crate) fn list_len(field: Field, len: usize) -> Result<(), Violation> {
    let may_be_empty = matches!(
        field,
        Field::TcList
            | Field::ExtList
            | Field::UnneededManifestList
            | Field::ComponentId
            | Field::SystemComponentId
    );
    if len == 0 && !may_be_empty {
        return Err(Violation::EmptyList { field });
    }
    Ok(())
}

/// have-binary = true requires tc-manifest-sequence-number (spec §4.2, a MUST).
pub(crate) fn requested_tc_info(info: &RequestedTcInfo) -> Result<(), Violation> {
    if info.have_binary == Some(true) && info.tc_manifest_sequence_number.is_none() {
        return Err(Violation::HaveBinaryWithoutSequenceNumber);
    }
    Ok(())
}

/// A tc-list entry needs at least one SUIT parameter (`+ $$SUIT_Parameters` in
/// draft-ietf-suit-report), and key 0 is its system-component-id, never a parameter.
pub(crate) fn claims(claims: &SystemPropertyClaims) -> Result<(), Violation> {
    if claims.parameters.contains_key(&0) {
        return Err(Violation::ParameterKeyZero);
    }
    if claims.parameters.is_empty() {
        return Err(Violation::NoSuitParameter);
    }
    Ok(())
}

/// An err-code must be non-zero, and `Unknown(n)` must not carry a known number (it
/// would decode as the known code, breaking decode(encode(m)) == m).
pub(crate) fn err_code(code: ErrCode, numbering: Numbering) -> Result<u64, Violation> {
    match code {
        ErrCode::Unknown(0) => Err(Violation::ReservedErrCode),
        ErrCode::Unknown(n) if ErrCode::from_number(n, numbering) != Some(code) => {
            Err(Violation::KnownCodeAsUnknown(n))
        }
        known => Ok(known.number(numbering)),
    }
}
