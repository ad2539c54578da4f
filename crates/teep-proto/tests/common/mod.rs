//! proptest strategies for arbitrary valid TEEP messages, shared by proptest.rs and cddl.rs.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers: a failure here is a failed test"
)]
#![allow(dead_code)] // each test binary uses a subset

use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use teep_proto::{
    CipherOperation, CipherSuite, ComponentId, DataItemRequested, ErrCode, ErrorMessage,
    Extensions, FreshnessMechanism, Message, Numbering, QueryRequest, QueryResponse, RawCbor,
    RequestedTcInfo, Success, SuitCoseProfile, SystemPropertyClaims, Update,
};

/// What to generate.
#[derive(Clone, Copy, Debug)]
pub struct Gen {
    pub numbering: Numbering,
    /// Only what the draft's CDDL itself accepts: registered values, no extensions,
    /// non-empty lists everywhere, embedded bstrs that hold CBOR.
    pub cddl: bool,
}

pub fn numbering() -> impl Strategy<Value = Numbering> {
    prop_oneof![Just(Numbering::Draft26), Just(Numbering::Pre26)]
}

fn bytes(min: usize, max: usize) -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), min..=max)
}

/// Text of `min..=max` BYTES (multi-byte characters included).
fn text(min: usize, max: usize) -> impl Strategy<Value = String> {
    vec(
        prop_oneof![Just('a'), Just('é'), Just('語'), any::<char>()],
        min..=max,
    )
    .prop_filter_map("byte length", move |chars| {
        let mut s: String = chars.into_iter().collect();
        while s.len() > max {
            s.pop();
        }
        (s.len() >= min).then_some(s)
    })
}

/// A small well-formed CBOR item (encoded), for raw values and bstr-wrapped CBOR.
pub fn cbor_item() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        any::<u8>().prop_map(|n| if n < 24 { vec![n] } else { vec![0x18, n] }),
        bytes(0, 20).prop_map(|b| {
            let mut out = vec![0x40 | b.len() as u8];
            out.extend(b);
            out
        }),
        vec(0u8..24, 0..5).prop_map(|items| {
            let mut out = vec![0x80 | items.len() as u8];
            out.extend(items);
            out
        }),
        Just(vec![0xa1, 0x01, 0x02]),
    ]
}

fn raw() -> impl Strategy<Value = RawCbor> {
    cbor_item().prop_map(|b| RawCbor::new(b).unwrap())
}

fn opt<S: Strategy>(s: S) -> impl Strategy<Value = Option<S::Value>> {
    proptest::option::of(s)
}

fn token() -> impl Strategy<Value = Vec<u8>> {
    bytes(8, 64)
}

fn challenge() -> impl Strategy<Value = Vec<u8>> {
    bytes(8, 512)
}

fn min_len(g: Gen, spec_16_4: bool) -> usize {
    usize::from(g.cddl || !spec_16_4)
}

fn bstr_list(g: Gen) -> impl Strategy<Value = Vec<Vec<u8>>> {
    // With `cddl`, the bstrs are `.cbor`: they must hold one CBOR item.
    let item = if g.cddl {
        cbor_item().boxed()
    } else {
        bytes(0, 40).boxed()
    };
    vec(item, 1..4)
}

fn cipher_suite(g: Gen) -> BoxedStrategy<CipherSuite> {
    if g.cddl {
        prop_oneof![
            Just(CipherSuite::SIGN1_ESP256),
            Just(CipherSuite::SIGN1_ED25519)
        ]
        .boxed()
    } else {
        vec(
            (any::<u64>(), any::<i64>())
                .prop_map(|(cose_type, alg)| CipherOperation { cose_type, alg }),
            1..3,
        )
        .prop_map(CipherSuite::new)
        .boxed()
    }
}

fn profile(g: Gen) -> BoxedStrategy<SuitCoseProfile> {
    if g.cddl {
        proptest::sample::select(SuitCoseProfile::ALL_MTI.to_vec()).boxed()
    } else {
        any::<[i64; 4]>().prop_map(SuitCoseProfile).boxed()
    }
}

fn freshness(g: Gen) -> impl Strategy<Value = Vec<FreshnessMechanism>> {
    let max = if g.cddl { 1 } else { u64::MAX };
    vec((0..=max).prop_map(FreshnessMechanism), 1..3)
}

fn component_id() -> impl Strategy<Value = ComponentId> {
    vec(bytes(0, 16), 0..4).prop_map(ComponentId)
}

fn claims() -> impl Strategy<Value = SystemPropertyClaims> {
    (
        component_id(),
        btree_map(
            any::<i64>().prop_filter("key 0 is the component id", |k| *k != 0),
            raw(),
            1..4,
        ),
    )
        .prop_map(|(component_id, parameters)| SystemPropertyClaims {
            component_id,
            parameters,
        })
}

fn requested_tc_info() -> impl Strategy<Value = RequestedTcInfo> {
    (component_id(), opt(any::<u64>()), opt(any::<bool>())).prop_map(|(component_id, seq, have)| {
        RequestedTcInfo {
            component_id,
            // have-binary = true requires a sequence number.
            tc_manifest_sequence_number: if have == Some(true) {
                Some(seq.unwrap_or(0))
            } else {
                seq
            },
            have_binary: have,
        }
    })
}

/// Extensions with labels no numbering assigns (0 and 24..), none with `cddl`.
fn extensions(g: Gen) -> BoxedStrategy<Extensions> {
    if g.cddl {
        Just(Extensions::new()).boxed()
    } else {
        btree_map(prop_oneof![Just(0u64), 24u64..], raw(), 0..3).boxed()
    }
}

fn err_code(g: Gen) -> BoxedStrategy<ErrCode> {
    let known = proptest::sample::select(ErrCode::KNOWN.to_vec());
    if g.cddl {
        known.boxed()
    } else {
        let numbering = g.numbering;
        prop_oneof![
            known,
            (1u64..).prop_filter_map("unknown in this numbering", move |n| {
                let code = ErrCode::from_number(n, numbering)?;
                matches!(code, ErrCode::Unknown(_)).then_some(code)
            }),
        ]
        .boxed()
    }
}

fn query_request(g: Gen) -> impl Strategy<Value = QueryRequest> {
    // cddl 0.10.7 wrongly rejects the `.bits` value 0 (no bit set, which RFC 8610 allows);
    // the round-trip property covers 0.
    let data_items = if g.cddl { 1u64..16 } else { 0u64..u64::MAX };
    (
        (
            opt(token()),
            opt(freshness(g)),
            opt(challenge()),
            opt(vec(any::<u32>(), 1..4)),
        ),
        (
            opt(text(0, 40)),
            opt(bytes(0, 40)),
            opt(bstr_list(g)),
            extensions(g),
        ),
        (
            vec(cipher_suite(g), 1..3),
            vec(profile(g), 1..5),
            data_items,
        ),
    )
        .prop_map(
            |(
                (token, fresh, challenge, versions),
                (format, payload, reports, extensions),
                (suites, profiles, items),
            )| {
                QueryRequest {
                    token,
                    supported_freshness_mechanisms: fresh,
                    challenge,
                    versions,
                    attestation_payload_format: format,
                    attestation_payload: payload,
                    suit_reports: reports,
                    extensions,
                    supported_teep_cipher_suites: suites,
                    supported_suit_cose_profiles: profiles,
                    data_item_requested: DataItemRequested(items),
                }
            },
        )
}

fn query_response(g: Gen) -> impl Strategy<Value = QueryResponse> {
    (
        (
            opt(token()),
            opt(any::<u32>()),
            opt(text(0, 40)),
            opt(bytes(0, 40)),
            opt(bstr_list(g)),
        ),
        (
            opt(vec(claims(), min_len(g, true)..3)),
            opt(vec(requested_tc_info(), 1..3)),
            opt(vec(component_id(), min_len(g, true)..3)),
            opt(vec(any::<u32>(), min_len(g, true)..3)),
            extensions(g),
        ),
    )
        .prop_map(
            |(
                (token, selected, format, payload, reports),
                (tc, req, unneeded, ext, extensions),
            )| {
                QueryResponse {
                    token,
                    selected_version: selected,
                    attestation_payload_format: format,
                    attestation_payload: payload,
                    suit_reports: reports,
                    tc_list: tc,
                    requested_tc_list: req,
                    unneeded_manifest_list: unneeded,
                    ext_list: ext,
                    extensions,
                }
            },
        )
}

fn update(g: Gen) -> impl Strategy<Value = Update> {
    (
        (
            opt(token()),
            opt(vec(component_id(), min_len(g, true)..3)),
            opt(bstr_list(g)),
        ),
        (opt(text(0, 40)), opt(bytes(0, 40)), opt(err_code(g))),
        (opt(text(1, 128)), opt(text(1, 35)), extensions(g)),
    )
        .prop_map(
            |((token, unneeded, manifests), (format, payload, code), (msg, lang, extensions))| {
                Update {
                    token,
                    unneeded_manifest_list: unneeded,
                    manifest_list: manifests,
                    attestation_payload_format: format,
                    attestation_payload: payload,
                    err_code: code,
                    err_msg: msg,
                    err_lang: lang,
                    extensions,
                }
            },
        )
}

fn success(g: Gen) -> impl Strategy<Value = Success> {
    (
        opt(token()),
        opt(text(1, 128)),
        opt(bstr_list(g)),
        extensions(g),
    )
        .prop_map(|(token, msg, suit_reports, extensions)| Success {
            token,
            msg,
            suit_reports,
            extensions,
        })
}

fn error(g: Gen) -> impl Strategy<Value = ErrorMessage> {
    (
        (
            opt(token()),
            opt(text(1, 128)),
            opt(text(1, 35)),
            opt(vec(cipher_suite(g), 1..3)),
        ),
        (
            opt(freshness(g)),
            opt(vec(profile(g), 1..3)),
            opt(challenge()),
            opt(vec(any::<u32>(), 1..3)),
        ),
        (opt(bstr_list(g)), extensions(g), err_code(g)),
    )
        .prop_map(
            |(
                (token, msg, lang, suites),
                (fresh, profiles, challenge, versions),
                (reports, extensions, code),
            )| {
                ErrorMessage {
                    token,
                    err_msg: msg,
                    err_lang: lang,
                    supported_teep_cipher_suites: suites,
                    supported_freshness_mechanisms: fresh,
                    supported_suit_cose_profiles: profiles,
                    challenge,
                    versions,
                    suit_reports: reports,
                    extensions,
                    err_code: code,
                }
            },
        )
}

/// Any valid message for `g`.
pub fn message(g: Gen) -> impl Strategy<Value = Message> {
    prop_oneof![
        query_request(g).prop_map(Message::QueryRequest),
        query_response(g).prop_map(Message::QueryResponse),
        update(g).prop_map(Message::Update),
        success(g).prop_map(Message::Success),
        error(g).prop_map(Message::Error),
    ]
}

/// A numbering and a valid message for it.
pub fn numbered_message(cddl: bool) -> impl Strategy<Value = (Numbering, Message)> {
    numbering().prop_flat_map(move |numbering| {
        message(Gen { numbering, cddl }).prop_map(move |m| (numbering, m))
    })
}

/// Reads a vector's hex file.
pub fn vector(rel: &str) -> Vec<u8> {
    let path = format!(
        "{}/../../tests/vectors/teep/{rel}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    hex::decode(text.trim()).unwrap()
}

/// The vector `name` (without `.hex`) in `numbering`'s directory.
pub fn numbered_vector(numbering: Numbering, name: &str) -> Vec<u8> {
    match numbering {
        Numbering::Draft26 => vector(&format!("{name}.hex")),
        Numbering::Pre26 => vector(&format!("pre-26-numbering/{name}.hex")),
    }
}

/// The names of the draft's message vectors, one per message type.
pub const MESSAGES: [&str; 5] = [
    "query_request",
    "query_response",
    "update",
    "success",
    "error",
];

/// Every TEEP message vector with its numbering.
pub fn all_vectors() -> Vec<(Numbering, &'static str, Vec<u8>)> {
    let mut out = Vec::new();
    for name in MESSAGES {
        for numbering in [Numbering::Draft26, Numbering::Pre26] {
            out.push((numbering, name, numbered_vector(numbering, name)));
        }
    }
    out
}

/// Parse, then verify: the one way from signed bytes to a message.
pub fn verify(
    cose: &[u8],
    numbering: Numbering,
    cx: &teep_cose::VerifyContext<'_>,
) -> Result<teep_proto::VerifiedMessage, teep_proto::ProtoError> {
    teep_proto::Unverified::parse(cose, numbering)?.verify(cx)
}
