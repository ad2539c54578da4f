//! Command sequences: conditions, directives and parameters, decoded with the byte offset
//! of every command (reports point at the failing command by offset).

use alloc::string::String;
use alloc::vec::Vec;

use crate::cbor::Reader;
use crate::error::{SuitError, malformed};
use crate::model::Digest;

/// Declares [`CommandNumber`] and [`COMMANDS`] from one list, so the numbers are stated
/// once: decoding matches on the enum, the capability report lists the same numbers.
macro_rules! commands {
    ($($(#[$doc:meta])* $name:ident = $number:literal,)*) => {
        /// Every SUIT command this processor implements, by its wire number.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum CommandNumber {
            $($(#[$doc])* $name = $number,)*
        }

        impl CommandNumber {
            /// Every variant, in ascending number order.
            pub const ALL: &'static [Self] = &[$(Self::$name,)*];

            /// The command with this wire number, if we implement it.
            pub const fn from_number(number: i64) -> Option<Self> {
                match number {
                    $($number => Some(Self::$name),)*
                    _ => None,
                }
            }
        }

        /// `suit-command-capabilities`: the commands this processor implements, ascending
        /// (what a TEEP Agent advertises and a capability report lists).
        pub const COMMANDS: &[i64] = &[$($number,)*];
    };
}

commands! {
    VendorIdentifier = 1,
    ClassIdentifier = 2,
    ImageMatch = 3,
    ComponentSlot = 5,
    CheckContent = 6,
    DependencyIntegrity = 7,
    IsDependency = 8,
    ProcessDependency = 11,
    SetComponentIndex = 12,
    Abort = 14,
    TryEach = 15,
    Write = 18,
    SetParameters = 19,
    OverrideParameters = 20,
    Fetch = 21,
    Copy = 22,
    Invoke = 23,
    DeviceIdentifier = 24,
    Swap = 31,
    RunSequence = 32,
    Unlink = 33,
}

impl CommandNumber {
    /// The number on the wire.
    pub const fn number(self) -> i64 {
        self as i64
    }
}

/// Conditions: side-effect free checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Condition {
    VendorIdentifier = CommandNumber::VendorIdentifier as isize,
    ClassIdentifier = CommandNumber::ClassIdentifier as isize,
    ImageMatch = CommandNumber::ImageMatch as isize,
    ComponentSlot = CommandNumber::ComponentSlot as isize,
    CheckContent = CommandNumber::CheckContent as isize,
    DependencyIntegrity = CommandNumber::DependencyIntegrity as isize,
    IsDependency = CommandNumber::IsDependency as isize,
    Abort = CommandNumber::Abort as isize,
    DeviceIdentifier = CommandNumber::DeviceIdentifier as isize,
}

impl Condition {
    /// The command number (all conditions are below 256), as errors name it.
    pub const fn number(self) -> u8 {
        self as u8
    }
}

/// Directives that take a reporting policy as argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Directive {
    ProcessDependency = CommandNumber::ProcessDependency as isize,
    Write = CommandNumber::Write as isize,
    Fetch = CommandNumber::Fetch as isize,
    Copy = CommandNumber::Copy as isize,
    Invoke = CommandNumber::Invoke as isize,
    Swap = CommandNumber::Swap as isize,
    Unlink = CommandNumber::Unlink as isize,
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
            Self::SetComponentIndex(_) => CommandNumber::SetComponentIndex.number(),
            Self::TryEach(..) => CommandNumber::TryEach.number(),
            Self::RunSequence(_) => CommandNumber::RunSequence.number(),
            Self::OverrideParameters(_) => CommandNumber::OverrideParameters.number(),
            Self::SetParameters(_) => CommandNumber::SetParameters.number(),
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
        let code =
            CommandNumber::from_number(number).ok_or(SuitError::UnsupportedCommand(number))?;
        let condition = |c, r: &mut Reader<'_>| Ok::<_, SuitError>(Command::Condition(c, rep(r)?));
        let directive = |d, r: &mut Reader<'_>| Ok::<_, SuitError>(Command::Directive(d, rep(r)?));
        let command = match code {
            CommandNumber::VendorIdentifier => condition(Condition::VendorIdentifier, &mut r)?,
            CommandNumber::ClassIdentifier => condition(Condition::ClassIdentifier, &mut r)?,
            CommandNumber::ImageMatch => condition(Condition::ImageMatch, &mut r)?,
            CommandNumber::ComponentSlot => condition(Condition::ComponentSlot, &mut r)?,
            CommandNumber::CheckContent => condition(Condition::CheckContent, &mut r)?,
            CommandNumber::DependencyIntegrity => {
                condition(Condition::DependencyIntegrity, &mut r)?
            }
            CommandNumber::IsDependency => condition(Condition::IsDependency, &mut r)?,
            CommandNumber::Abort => condition(Condition::Abort, &mut r)?,
            CommandNumber::DeviceIdentifier => condition(Condition::DeviceIdentifier, &mut r)?,
            CommandNumber::ProcessDependency => directive(Directive::ProcessDependency, &mut r)?,
            CommandNumber::Write => directive(Directive::Write, &mut r)?,
            CommandNumber::Fetch => directive(Directive::Fetch, &mut r)?,
            CommandNumber::Copy => directive(Directive::Copy, &mut r)?,
            CommandNumber::Invoke => directive(Directive::Invoke, &mut r)?,
            CommandNumber::Swap => directive(Directive::Swap, &mut r)?,
            CommandNumber::Unlink => directive(Directive::Unlink, &mut r)?,
            CommandNumber::SetComponentIndex => Command::SetComponentIndex(index_arg(&mut r)?),
            CommandNumber::TryEach => try_each(&mut r, base, offset)?,
            CommandNumber::RunSequence => {
                let b = r.bytes("run-sequence argument")?;
                Command::RunSequence(Nested {
                    bytes: b,
                    offset: base + r.offset_of(b),
                })
            }
            CommandNumber::OverrideParameters => {
                Command::OverrideParameters(Parameters::decode(&mut r)?)
            }
            CommandNumber::SetParameters => Command::SetParameters(Parameters::decode(&mut r)?),
        };
        steps.push(Step { offset, command });
    }
    r.finish("trailing bytes after command sequence")?;
    Ok(steps)
}

/// try-each's argument: two or more sequences, the last possibly `nil`.
fn try_each<'a>(r: &mut Reader<'a>, base: usize, offset: usize) -> Result<Command<'a>, SuitError> {
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
    Ok(Command::TryEach(branches, empty_ok))
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
