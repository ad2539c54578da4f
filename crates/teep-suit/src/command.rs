//! Command sequences: conditions, directives and parameters, decoded with the byte offset
//! of every command (reports point at the failing command by offset).

use alloc::string::String;
use alloc::vec::Vec;

use crate::cbor::Reader;
use crate::error::{SuitError, malformed};
use crate::model::Digest;

/// Conditions: side-effect free checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Condition {
    VendorIdentifier = 1,
    ClassIdentifier = 2,
    ImageMatch = 3,
    ComponentSlot = 5,
    CheckContent = 6,
    DependencyIntegrity = 7,
    IsDependency = 8,
    Abort = 14,
    DeviceIdentifier = 24,
}

/// Directives that take a reporting policy as argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Directive {
    ProcessDependency = 11,
    Write = 18,
    Fetch = 21,
    Copy = 22,
    Invoke = 23,
    Swap = 31,
    Unlink = 33,
}

/// Argument of set-component-index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IndexArg {
    One(u64),
    All,
    List(Vec<u64>),
}

/// A nested sequence with the offset of its contents inside the section.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Nested<'a> {
    pub bytes: &'a [u8],
    pub offset: usize,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command<'a> {
    Condition(Condition, u64),
    Directive(Directive, u64),
    SetComponentIndex(IndexArg),
    /// Alternatives, and whether a trailing `nil` makes "all failed" acceptable.
    TryEach(Vec<Nested<'a>>, bool),
    RunSequence(Nested<'a>),
    OverrideParameters(Parameters),
    SetParameters(Parameters),
}

impl Command<'_> {
    /// The command number as on the wire.
    pub fn number(&self) -> i64 {
        match self {
            Self::Condition(c, _) => *c as i64,
            Self::Directive(d, _) => *d as i64,
            Self::SetComponentIndex(_) => 12,
            Self::TryEach(..) => 15,
            Self::RunSequence(_) => 32,
            Self::OverrideParameters(_) => 20,
            Self::SetParameters(_) => 19,
        }
    }

    /// Only these may appear in the shared sequence (no side effects but parameters).
    pub fn allowed_in_shared(&self) -> bool {
        matches!(
            self,
            Self::Condition(..)
                | Self::SetComponentIndex(_)
                | Self::RunSequence(_)
                | Self::TryEach(..)
                | Self::OverrideParameters(_)
        )
    }
}

/// One command and its byte offset within the section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step<'a> {
    pub offset: usize,
    pub command: Command<'a>,
}

/// `suit-parameter-vendor-identifier`: a UUID or a CBOR PEN (tag 112).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VendorId {
    Uuid(Vec<u8>),
    Pen(Vec<u8>),
}

/// Per-component parameters (plus the processor-wide strict-order and soft-failure as
/// they appear in an override/set map).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Parameters {
    pub vendor_id: Option<VendorId>,
    pub class_id: Option<Vec<u8>>,
    pub image_digest: Option<Digest>,
    pub component_slot: Option<u64>,
    pub strict_order: Option<bool>,
    pub soft_failure: Option<bool>,
    pub image_size: Option<u64>,
    pub content: Option<Vec<u8>>,
    /// Contents of the bstr: the encoded `SUIT_Encryption_Info` (COSE_Encrypt).
    pub encryption_info: Option<Vec<u8>>,
    pub uri: Option<String>,
    pub source_component: Option<u64>,
    pub invoke_args: Option<Vec<u8>>,
    pub device_id: Option<Vec<u8>>,
    pub fetch_arguments: Option<Vec<u8>>,
}

/// Parameter numbers, as used in errors and reports.
pub mod param {
    pub const VENDOR_ID: u8 = 1;
    pub const CLASS_ID: u8 = 2;
    pub const IMAGE_DIGEST: u8 = 3;
    pub const COMPONENT_SLOT: u8 = 5;
    pub const STRICT_ORDER: u8 = 12;
    pub const SOFT_FAILURE: u8 = 13;
    pub const IMAGE_SIZE: u8 = 14;
    pub const CONTENT: u8 = 18;
    pub const ENCRYPTION_INFO: u8 = 19;
    pub const URI: u8 = 21;
    pub const SOURCE_COMPONENT: u8 = 22;
    pub const INVOKE_ARGS: u8 = 23;
    pub const DEVICE_ID: u8 = 24;
    pub const FETCH_ARGUMENTS: u8 = 25;
}

macro_rules! merge_fields {
    ($dst:expr, $src:expr, $overwrite:expr; $($f:ident),*) => {
        $(
            if let Some(v) = &$src.$f {
                if $overwrite || $dst.$f.is_none() {
                    $dst.$f = Some(v.clone());
                }
            }
        )*
    };
}

impl Parameters {
    /// override-parameters (`overwrite`) or set-parameters (only where unset).
    pub fn merge(&mut self, other: &Self, overwrite: bool) {
        merge_fields!(self, other, overwrite; vendor_id, class_id, image_digest,
            component_slot, strict_order, soft_failure, image_size, content,
            encryption_info, uri, source_component, invoke_args, device_id, fetch_arguments);
    }

    /// Number of parameters that are set.
    pub fn count(&self) -> usize {
        let mut n = 0;
        self.encode_fields_with(&mut |_| n += 1, None);
        n
    }

    /// Encodes the set parameters as a SUIT_Parameters map.
    pub fn encode(&self, e: &mut minicbor::Encoder<&mut Vec<u8>>) {
        let _ = e.map(self.count() as u64);
        self.encode_fields(e);
    }

    /// Encodes the set parameters as map entries (key, value), ascending keys.
    pub fn encode_fields(&self, e: &mut minicbor::Encoder<&mut Vec<u8>>) {
        self.encode_fields_with(&mut |_| {}, Some(e));
    }

    /// One walk over the set fields in key order, shared by `count` and the encoders.
    fn encode_fields_with(
        &self,
        seen: &mut dyn FnMut(u8),
        mut e: Option<&mut minicbor::Encoder<&mut Vec<u8>>>,
    ) {
        use minicbor::data::Tag;
        macro_rules! field {
            ($key:expr, $opt:expr, |$e:ident, $v:ident| $body:expr) => {
                if let Some($v) = &$opt {
                    seen($key);
                    if let Some($e) = e.as_deref_mut() {
                        let _ = $e.u8($key);
                        let _ = $body;
                    }
                }
            };
        }
        field!(param::VENDOR_ID, self.vendor_id, |e, v| match v {
            VendorId::Uuid(b) => e.bytes(b),
            VendorId::Pen(b) => e.tag(Tag::new(112)).and_then(|e| e.bytes(b)),
        });
        field!(param::CLASS_ID, self.class_id, |e, v| e.bytes(v));
        field!(param::IMAGE_DIGEST, self.image_digest, |e, v| e
            .bytes(&v.to_cbor()));
        field!(param::COMPONENT_SLOT, self.component_slot, |e, v| e.u64(*v));
        field!(param::STRICT_ORDER, self.strict_order, |e, v| e.bool(*v));
        field!(param::SOFT_FAILURE, self.soft_failure, |e, v| e.bool(*v));
        field!(param::IMAGE_SIZE, self.image_size, |e, v| e.u64(*v));
        field!(param::CONTENT, self.content, |e, v| e.bytes(v));
        field!(param::ENCRYPTION_INFO, self.encryption_info, |e, v| e
            .bytes(v));
        field!(param::URI, self.uri, |e, v| e.str(v));
        field!(param::SOURCE_COMPONENT, self.source_component, |e, v| e
            .u64(*v));
        field!(param::INVOKE_ARGS, self.invoke_args, |e, v| e.bytes(v));
        field!(param::DEVICE_ID, self.device_id, |e, v| e.bytes(v));
        field!(param::FETCH_ARGUMENTS, self.fetch_arguments, |e, v| e
            .bytes(v));
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, SuitError> {
        let n = r.map("SUIT_Parameters")?;
        let mut p = Self::default();
        let mut seen = Vec::new();
        for _ in 0..n {
            let key = crate::cbor::int_key(r, &mut seen, "parameter key")?;
            match key {
                1 => {
                    p.vendor_id = Some(if r.datatype()? == minicbor::data::Type::Tag {
                        let at = r.position();
                        if r.tag("vendor id tag")? != 112 {
                            return Err(malformed("vendor id tag must be 112 (CBOR PEN)", at));
                        }
                        VendorId::Pen(r.bytes("CBOR PEN")?.to_vec())
                    } else {
                        VendorId::Uuid(uuid(r, "vendor id")?)
                    })
                }
                2 => p.class_id = Some(uuid(r, "class id")?),
                3 => p.image_digest = Some(Digest::from_cbor(r.bytes("image digest")?)?),
                5 => p.component_slot = Some(r.u64("component slot")?),
                12 => p.strict_order = Some(r.bool("strict order")?),
                13 => p.soft_failure = Some(r.bool("soft failure")?),
                14 => p.image_size = Some(r.u64("image size")?),
                18 => p.content = Some(r.bytes("content")?.to_vec()),
                19 => p.encryption_info = Some(r.bytes("encryption info")?.to_vec()),
                21 => p.uri = Some(String::from(r.str("uri")?)),
                22 => p.source_component = Some(r.u64("source component")?),
                23 => p.invoke_args = Some(r.bytes("invoke args")?.to_vec()),
                24 => p.device_id = Some(uuid(r, "device id")?),
                25 => p.fetch_arguments = Some(r.bytes("fetch arguments")?.to_vec()),
                other => return Err(SuitError::UnsupportedParameter(other)),
            }
        }
        Ok(p)
    }
}

fn uuid(r: &mut Reader<'_>, what: &'static str) -> Result<Vec<u8>, SuitError> {
    let at = r.position();
    let b = r.bytes(what)?;
    if b.len() != 16 {
        return Err(malformed("UUID must be 16 bytes", at));
    }
    Ok(b.to_vec())
}

/// Decodes a whole command sequence. `base` is the offset of `bytes` inside its section
/// (non-zero for try-each / run-sequence bodies), so offsets are section-relative.
/// Unknown commands fail here, before any command of the sequence runs.
pub fn parse_sequence(bytes: &[u8], base: usize) -> Result<Vec<Step<'_>>, SuitError> {
    let mut r = Reader::new(bytes);
    let n = r.array("SUIT_Command_Sequence")?;
    if n == 0 || n % 2 != 0 {
        return Err(malformed(
            "command sequence needs (command, argument) pairs",
            base,
        ));
    }
    let mut steps = Vec::new();
    for _ in 0..n / 2 {
        let offset = base + r.position();
        let number = r.i64("command number")?;
        let command = match number {
            1 => Command::Condition(Condition::VendorIdentifier, rep(&mut r)?),
            2 => Command::Condition(Condition::ClassIdentifier, rep(&mut r)?),
            3 => Command::Condition(Condition::ImageMatch, rep(&mut r)?),
            5 => Command::Condition(Condition::ComponentSlot, rep(&mut r)?),
            6 => Command::Condition(Condition::CheckContent, rep(&mut r)?),
            7 => Command::Condition(Condition::DependencyIntegrity, rep(&mut r)?),
            8 => Command::Condition(Condition::IsDependency, rep(&mut r)?),
            14 => Command::Condition(Condition::Abort, rep(&mut r)?),
            24 => Command::Condition(Condition::DeviceIdentifier, rep(&mut r)?),
            11 => Command::Directive(Directive::ProcessDependency, rep(&mut r)?),
            18 => Command::Directive(Directive::Write, rep(&mut r)?),
            21 => Command::Directive(Directive::Fetch, rep(&mut r)?),
            22 => Command::Directive(Directive::Copy, rep(&mut r)?),
            23 => Command::Directive(Directive::Invoke, rep(&mut r)?),
            31 => Command::Directive(Directive::Swap, rep(&mut r)?),
            33 => Command::Directive(Directive::Unlink, rep(&mut r)?),
            12 => Command::SetComponentIndex(index_arg(&mut r)?),
            15 => {
                let m = r.array("try-each argument")?;
                if m < 2 {
                    return Err(malformed("try-each needs two or more sequences", offset));
                }
                let mut branches = Vec::new();
                let mut empty_ok = false;
                for i in 0..m {
                    if r.datatype()? == minicbor::data::Type::Null && i == m - 1 {
                        r.null("try-each nil")?;
                        empty_ok = true;
                    } else {
                        let b = r.bytes("try-each alternative")?;
                        branches.push(Nested {
                            bytes: b,
                            offset: base + r.offset_of(b),
                        });
                    }
                }
                Command::TryEach(branches, empty_ok)
            }
            32 => {
                let b = r.bytes("run-sequence argument")?;
                Command::RunSequence(Nested {
                    bytes: b,
                    offset: base + r.offset_of(b),
                })
            }
            20 => Command::OverrideParameters(Parameters::decode(&mut r)?),
            19 => Command::SetParameters(Parameters::decode(&mut r)?),
            other => return Err(SuitError::UnsupportedCommand(other)),
        };
        steps.push(Step { offset, command });
    }
    r.finish("trailing bytes after command sequence")?;
    Ok(steps)
}

fn rep(r: &mut Reader<'_>) -> Result<u64, SuitError> {
    r.u64("reporting policy")
}

fn index_arg(r: &mut Reader<'_>) -> Result<IndexArg, SuitError> {
    match r.datatype()? {
        minicbor::data::Type::Bool => {
            let at = r.position();
            if r.bool("component index")? {
                Ok(IndexArg::All)
            } else {
                Err(malformed("component index false", at))
            }
        }
        minicbor::data::Type::Array => {
            let n = r.array("component index list")?;
            if n == 0 {
                return Err(SuitError::EmptyComponentIndexList);
            }
            let mut v = Vec::new();
            for _ in 0..n {
                v.push(r.u64("component index")?);
            }
            Ok(IndexArg::List(v))
        }
        _ => Ok(IndexArg::One(r.u64("component index")?)),
    }
}
