//! One flat view of a message's present fields, shared by the encoder and the JSON view
//! so that both walk the same list and cannot drift apart.

use alloc::vec::Vec;

use crate::numbering::Field;
use crate::types::{
    CipherSuite, ComponentId, DataItemRequested, ErrCode, ErrorMessage, Extensions,
    FreshnessMechanism, Message, QueryRequest, QueryResponse, RequestedTcInfo, Success,
    SuitCoseProfile, SystemPropertyClaims, Update,
};

/// The value of one field, borrowed from the message.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Value<'a> {
    Bytes(&'a [u8]),
    Text(&'a str),
    Uint(u64),
    Freshness(&'a [FreshnessMechanism]),
    Versions(&'a [u32]),
    BstrList(&'a [Vec<u8>]),
    CipherSuites(&'a [CipherSuite]),
    Profiles(&'a [SuitCoseProfile]),
    DataItems(DataItemRequested),
    TcList(&'a [SystemPropertyClaims]),
    RequestedTcList(&'a [RequestedTcInfo]),
    ComponentIds(&'a [ComponentId]),
    ErrCode(ErrCode),
}

/// A message as: its present options, its extensions, and its positional elements.
pub(crate) struct Parts<'a> {
    /// Options this message type defines, in field order (the encoder sorts by label).
    pub(crate) options: Vec<(Field, Value<'a>)>,
    /// Options kept raw because this message type does not define their label.
    pub(crate) extensions: &'a Extensions,
    /// Every option this message type defines, present or not.
    pub(crate) defined: &'static [Field],
    /// Elements after the options map.
    pub(crate) positional: Vec<(Field, Value<'a>)>,
}

/// Collects the present options of one message type.
struct Builder<'a> {
    options: Vec<(Field, Value<'a>)>,
    defined: &'static [Field],
}

impl<'a> Builder<'a> {
    fn new(defined: &'static [Field]) -> Self {
        Self {
            options: Vec::with_capacity(defined.len()),
            defined,
        }
    }

    fn finish(self, extensions: &'a Extensions, positional: Vec<(Field, Value<'a>)>) -> Parts<'a> {
        Parts {
            options: self.options,
            extensions,
            defined: self.defined,
            positional,
        }
    }

    fn opt<T: ?Sized>(&mut self, field: Field, v: Option<&'a T>, f: fn(&'a T) -> Value<'a>) {
        if let Some(v) = v {
            self.options.push((field, f(v)));
        }
    }
}

const QUERY_REQUEST: &[Field] = &[
    Field::Token,
    Field::SupportedFreshnessMechanisms,
    Field::Challenge,
    Field::Versions,
    Field::AttestationPayloadFormat,
    Field::AttestationPayload,
    Field::SuitReports,
];
const QUERY_RESPONSE: &[Field] = &[
    Field::Token,
    Field::SelectedVersion,
    Field::AttestationPayloadFormat,
    Field::AttestationPayload,
    Field::SuitReports,
    Field::TcList,
    Field::RequestedTcList,
    Field::UnneededManifestList,
    Field::ExtList,
];
const UPDATE: &[Field] = &[
    Field::Token,
    Field::UnneededManifestList,
    Field::ManifestList,
    Field::AttestationPayloadFormat,
    Field::AttestationPayload,
    Field::ErrCode,
    Field::ErrMsg,
    Field::ErrLang,
];
const SUCCESS: &[Field] = &[Field::Token, Field::Msg, Field::SuitReports];
const ERROR: &[Field] = &[
    Field::Token,
    Field::ErrMsg,
    Field::ErrLang,
    Field::SupportedTeepCipherSuites,
    Field::SupportedFreshnessMechanisms,
    Field::SupportedSuitCoseProfiles,
    Field::Challenge,
    Field::Versions,
    Field::SuitReports,
];

impl Message {
    pub(crate) fn parts(&self) -> Parts<'_> {
        match self {
            Self::QueryRequest(m) => query_request(m),
            Self::QueryResponse(m) => query_response(m),
            Self::Update(m) => update(m),
            Self::Success(m) => success(m),
            Self::Error(m) => error(m),
        }
    }
}

fn query_request(m: &QueryRequest) -> Parts<'_> {
    let mut b = Builder::new(QUERY_REQUEST);
    b.opt(Field::Token, m.token.as_deref(), Value::Bytes);
    b.opt(
        Field::SupportedFreshnessMechanisms,
        m.supported_freshness_mechanisms.as_deref(),
        Value::Freshness,
    );
    b.opt(Field::Challenge, m.challenge.as_deref(), Value::Bytes);
    b.opt(Field::Versions, m.versions.as_deref(), Value::Versions);
    b.opt(
        Field::AttestationPayloadFormat,
        m.attestation_payload_format.as_deref(),
        Value::Text,
    );
    b.opt(
        Field::AttestationPayload,
        m.attestation_payload.as_deref(),
        Value::Bytes,
    );
    b.opt(
        Field::SuitReports,
        m.suit_reports.as_deref(),
        Value::BstrList,
    );
    b.finish(
        &m.extensions,
        alloc::vec![
            (
                Field::SupportedTeepCipherSuites,
                Value::CipherSuites(&m.supported_teep_cipher_suites)
            ),
            (
                Field::SupportedSuitCoseProfiles,
                Value::Profiles(&m.supported_suit_cose_profiles)
            ),
            (
                Field::DataItemRequested,
                Value::DataItems(m.data_item_requested)
            ),
        ],
    )
}

fn query_response(m: &QueryResponse) -> Parts<'_> {
    let mut b = Builder::new(QUERY_RESPONSE);
    b.opt(Field::Token, m.token.as_deref(), Value::Bytes);
    if let Some(v) = m.selected_version {
        b.options
            .push((Field::SelectedVersion, Value::Uint(u64::from(v))));
    }
    b.opt(
        Field::AttestationPayloadFormat,
        m.attestation_payload_format.as_deref(),
        Value::Text,
    );
    b.opt(
        Field::AttestationPayload,
        m.attestation_payload.as_deref(),
        Value::Bytes,
    );
    b.opt(
        Field::SuitReports,
        m.suit_reports.as_deref(),
        Value::BstrList,
    );
    b.opt(Field::TcList, m.tc_list.as_deref(), Value::TcList);
    b.opt(
        Field::RequestedTcList,
        m.requested_tc_list.as_deref(),
        Value::RequestedTcList,
    );
    b.opt(
        Field::UnneededManifestList,
        m.unneeded_manifest_list.as_deref(),
        Value::ComponentIds,
    );
    b.opt(Field::ExtList, m.ext_list.as_deref(), Value::Versions);
    b.finish(&m.extensions, Vec::new())
}

fn update(m: &Update) -> Parts<'_> {
    let mut b = Builder::new(UPDATE);
    b.opt(Field::Token, m.token.as_deref(), Value::Bytes);
    b.opt(
        Field::UnneededManifestList,
        m.unneeded_manifest_list.as_deref(),
        Value::ComponentIds,
    );
    b.opt(
        Field::ManifestList,
        m.manifest_list.as_deref(),
        Value::BstrList,
    );
    b.opt(
        Field::AttestationPayloadFormat,
        m.attestation_payload_format.as_deref(),
        Value::Text,
    );
    b.opt(
        Field::AttestationPayload,
        m.attestation_payload.as_deref(),
        Value::Bytes,
    );
    if let Some(code) = m.err_code {
        b.options.push((Field::ErrCode, Value::ErrCode(code)));
    }
    b.opt(Field::ErrMsg, m.err_msg.as_deref(), Value::Text);
    b.opt(Field::ErrLang, m.err_lang.as_deref(), Value::Text);
    b.finish(&m.extensions, Vec::new())
}

fn success(m: &Success) -> Parts<'_> {
    let mut b = Builder::new(SUCCESS);
    b.opt(Field::Token, m.token.as_deref(), Value::Bytes);
    b.opt(Field::Msg, m.msg.as_deref(), Value::Text);
    b.opt(
        Field::SuitReports,
        m.suit_reports.as_deref(),
        Value::BstrList,
    );
    b.finish(&m.extensions, Vec::new())
}

fn error(m: &ErrorMessage) -> Parts<'_> {
    let mut b = Builder::new(ERROR);
    b.opt(Field::Token, m.token.as_deref(), Value::Bytes);
    b.opt(Field::ErrMsg, m.err_msg.as_deref(), Value::Text);
    b.opt(Field::ErrLang, m.err_lang.as_deref(), Value::Text);
    b.opt(
        Field::SupportedTeepCipherSuites,
        m.supported_teep_cipher_suites.as_deref(),
        Value::CipherSuites,
    );
    b.opt(
        Field::SupportedFreshnessMechanisms,
        m.supported_freshness_mechanisms.as_deref(),
        Value::Freshness,
    );
    b.opt(
        Field::SupportedSuitCoseProfiles,
        m.supported_suit_cose_profiles.as_deref(),
        Value::Profiles,
    );
    b.opt(Field::Challenge, m.challenge.as_deref(), Value::Bytes);
    b.opt(Field::Versions, m.versions.as_deref(), Value::Versions);
    b.opt(
        Field::SuitReports,
        m.suit_reports.as_deref(),
        Value::BstrList,
    );
    b.finish(
        &m.extensions,
        alloc::vec![(Field::ErrCode, Value::ErrCode(m.err_code))],
    )
}
