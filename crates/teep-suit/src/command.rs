//! Command sequences: conditions, directives and parameters, decoded with the byte offset
//! of every command (reports point at the failing command by offset).

use alloc::string::String;
use alloc::vec::Vec;

use minicbor::data::Tag;
use teep_cbor::write::{EncodeError, MapEncoder, VecEncoder};

use crate::cbor::{Reader, SuitRead, strict_at};
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
    /// `suit-condition-vendor-identifier`.
    VendorIdentifier = 1,
    /// `suit-condition-class-identifier`.
    ClassIdentifier = 2,
    /// `suit-condition-image-match`.
    ImageMatch = 3,
    /// `suit-condition-component-slot`.
    ComponentSlot = 5,
    /// `suit-condition-check-content`.
    CheckContent = 6,
    /// `suit-condition-dependency-integrity` (trust domains).
    DependencyIntegrity = 7,
    /// `suit-condition-is-dependency` (trust domains).
    IsDependency = 8,
    /// `suit-directive-process-dependency` (trust domains).
    ProcessDependency = 11,
    /// `suit-directive-set-component-index`.
    SetComponentIndex = 12,
    /// `suit-condition-abort`.
    Abort = 14,
    /// `suit-directive-try-each`.
    TryEach = 15,
    /// `suit-directive-write`.
    Write = 18,
    /// `suit-directive-set-parameters` (trust domains).
    SetParameters = 19,
    /// `suit-directive-override-parameters`.
    OverrideParameters = 20,
    /// `suit-directive-fetch`.
    Fetch = 21,
    /// `suit-directive-copy`.
    Copy = 22,
    /// `suit-directive-invoke`.
    Invoke = 23,
    /// `suit-condition-device-identifier`.
    DeviceIdentifier = 24,
    /// `suit-directive-swap`.
    Swap = 31,
    /// `suit-directive-run-sequence`.
    RunSequence = 32,
    /// `suit-directive-unlink` (trust domains).
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
    /// `suit-condition-vendor-identifier`: the component's `vendor-id` matches the device's.
    VendorIdentifier = CommandNumber::VendorIdentifier as isize,
    /// `suit-condition-class-identifier`: the component's `class-id` matches the device's.
    ClassIdentifier = CommandNumber::ClassIdentifier as isize,
    /// `suit-condition-image-match`: the component's digest equals `image-digest`.
    ImageMatch = CommandNumber::ImageMatch as isize,
    /// `suit-condition-component-slot`: the current slot equals `component-slot`.
    ComponentSlot = CommandNumber::ComponentSlot as isize,
    /// `suit-condition-check-content`: the component equals `content` (constant time).
    CheckContent = CommandNumber::CheckContent as isize,
    /// `suit-condition-dependency-integrity`: the dependency envelope authenticates and
    /// matches `image-digest`.
    DependencyIntegrity = CommandNumber::DependencyIntegrity as isize,
    /// `suit-condition-is-dependency`: the current index names a dependency.
    IsDependency = CommandNumber::IsDependency as isize,
    /// `suit-condition-abort`: always fails (the last try-each branch).
    Abort = CommandNumber::Abort as isize,
    /// `suit-condition-device-identifier`: `device-id` matches the device.
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
    /// `suit-directive-process-dependency`: runs the dependency's matching sequence.
    ProcessDependency = CommandNumber::ProcessDependency as isize,
    /// `suit-directive-write`: stores `content` (decrypted if `encryption-info` is set).
    Write = CommandNumber::Write as isize,
    /// `suit-directive-fetch`: retrieves `uri` into the current component.
    Fetch = CommandNumber::Fetch as isize,
    /// `suit-directive-copy`: copies `source-component` into the current component.
    Copy = CommandNumber::Copy as isize,
    /// `suit-directive-invoke`: hands execution to the component, with `invoke-args`.
    Invoke = CommandNumber::Invoke as isize,
    /// `suit-directive-swap`: exchanges the current component and `source-component`.
    Swap = CommandNumber::Swap as isize,
    /// `suit-directive-unlink`: drops this manifest's reference to the component.
    Unlink = CommandNumber::Unlink as isize,
}

/// Argument of set-component-index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IndexArg {
    /// One component index.
    One(u64),
    /// `true`: every component.
    All,
    /// These component indices (never empty).
    List(Vec<u64>),
}

/// A nested sequence with the offset of its contents inside the section.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Nested<'a> {
    /// The encoded `SUIT_Command_Sequence` (the bstr's contents).
    pub bytes: &'a [u8],
    /// Offset of `bytes` inside the section, for the report.
    pub offset: usize,
}

/// One decoded SUIT command with its argument.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command<'a> {
    /// A condition and its reporting policy.
    Condition(Condition, u64),
    /// A directive and its reporting policy.
    Directive(Directive, u64),
    /// `suit-directive-set-component-index`.
    SetComponentIndex(IndexArg),
    /// Alternatives, and whether a trailing `nil` makes "all failed" acceptable.
    TryEach(Vec<Nested<'a>>, bool),
    /// `suit-directive-run-sequence`: the sub-sequence to run.
    RunSequence(Nested<'a>),
    /// `suit-directive-override-parameters`: set or replace each parameter.
    OverrideParameters(Parameters),
    /// `suit-directive-set-parameters`: set each parameter only where unset.
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
    /// Offset of the command number inside the section.
    pub offset: usize,
    /// The decoded command.
    pub command: Command<'a>,
}

/// `suit-parameter-vendor-identifier`: a UUID or a CBOR PEN (tag 112).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VendorId {
    /// A 16-byte RFC 4122 UUID.
    Uuid(Vec<u8>),
    /// The contents of a CBOR PEN (`#6.112(bstr)`), a relative OID under 1.3.6.1.4.1.
    Pen(Vec<u8>),
}

/// Per-component parameters (plus the processor-wide strict-order and soft-failure as
/// they appear in an override/set map).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Parameters {
    /// `suit-parameter-vendor-identifier` (1): who made the component.
    pub vendor_id: Option<VendorId>,
    /// `suit-parameter-class-identifier` (2): a 16-byte UUID naming the device class.
    pub class_id: Option<Vec<u8>>,
    /// `suit-parameter-image-digest` (3): the digest the component must have.
    pub image_digest: Option<Digest>,
    /// `suit-parameter-component-slot` (5): which slot the component goes in.
    pub component_slot: Option<u64>,
    /// `suit-parameter-strict-order` (12): processor-wide; `false` allows reordering.
    pub strict_order: Option<bool>,
    /// `suit-parameter-soft-failure` (13): processor-wide; only legal inside try-each or
    /// run-sequence.
    pub soft_failure: Option<bool>,
    /// `suit-parameter-image-size` (14): the component's size in bytes.
    pub image_size: Option<u64>,
    /// `suit-parameter-content` (18): small inline data for write and check-content.
    pub content: Option<Vec<u8>>,
    /// Contents of the bstr: the encoded `SUIT_Encryption_Info` (COSE_Encrypt).
    pub encryption_info: Option<Vec<u8>>,
    /// `suit-parameter-uri` (21): where fetch gets the payload (`#name` for an integrated one).
    pub uri: Option<String>,
    /// `suit-parameter-source-component` (22): component index for copy and swap.
    pub source_component: Option<u64>,
    /// `suit-parameter-invoke-args` (23): passed to the component by invoke.
    pub invoke_args: Option<Vec<u8>>,
    /// `suit-parameter-device-identifier` (24): a 16-byte UUID naming this device.
    pub device_id: Option<Vec<u8>>,
    /// `suit-parameter-fetch-arguments` (25): passed to the fetcher with the uri.
    pub fetch_arguments: Option<Vec<u8>>,
}

/// Parameter numbers, as used in errors and reports.
pub mod param {
    /// `suit-parameter-vendor-identifier`.
    pub const VENDOR_ID: u8 = 1;
    /// `suit-parameter-class-identifier`.
    pub const CLASS_ID: u8 = 2;
    /// `suit-parameter-image-digest`.
    pub const IMAGE_DIGEST: u8 = 3;
    /// `suit-parameter-component-slot`.
    pub const COMPONENT_SLOT: u8 = 5;
    /// `suit-parameter-strict-order`.
    pub const STRICT_ORDER: u8 = 12;
    /// `suit-parameter-soft-failure`.
    pub const SOFT_FAILURE: u8 = 13;
    /// `suit-parameter-image-size`.
    pub const IMAGE_SIZE: u8 = 14;
    /// `suit-parameter-content`.
    pub const CONTENT: u8 = 18;
    /// `suit-parameter-encryption-info` (firmware encryption).
    pub const ENCRYPTION_INFO: u8 = 19;
    /// `suit-parameter-uri`.
    pub const URI: u8 = 21;
    /// `suit-parameter-source-component`.
    pub const SOURCE_COMPONENT: u8 = 22;
    /// `suit-parameter-invoke-args`.
    pub const INVOKE_ARGS: u8 = 23;
    /// `suit-parameter-device-identifier`.
    pub const DEVICE_ID: u8 = 24;
    /// `suit-parameter-fetch-arguments`.
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
        self.fields().iter().filter(|(_, v)| v.is_some()).count()
    }

    /// Encodes the set parameters as a `SUIT_Parameters` map (the builder's
    /// override-parameters, report records; the fuzzer through [`crate::internal`]).
    pub(crate) fn encode(&self, e: &mut VecEncoder<'_>) -> Result<(), EncodeError> {
        MapEncoder::write_to(e, |m| self.encode_entries(m))
    }

    /// Adds the set parameters to `map` as entries, ascending keys.
    pub(crate) fn encode_entries(&self, map: &mut MapEncoder) -> Result<(), EncodeError> {
        for (key, value) in self.fields() {
            if let Some(value) = value {
                map.entry_with(key, |e| value.encode(e))?;
            }
        }
        Ok(())
    }

    /// Every parameter by key, ascending: the one list `count` and the encoder walk.
    fn fields(&self) -> [(u8, Option<Value<'_>>); 14] {
        fn bytes(v: &Option<Vec<u8>>) -> Option<Value<'_>> {
            v.as_deref().map(Value::Bytes)
        }
        [
            (
                param::VENDOR_ID,
                self.vendor_id.as_ref().map(|v| match v {
                    VendorId::Uuid(b) => Value::Bytes(b),
                    VendorId::Pen(b) => Value::Pen(b),
                }),
            ),
            (param::CLASS_ID, bytes(&self.class_id)),
            (
                param::IMAGE_DIGEST,
                self.image_digest.as_ref().map(Value::Digest),
            ),
            (param::COMPONENT_SLOT, self.component_slot.map(Value::Uint)),
            (param::STRICT_ORDER, self.strict_order.map(Value::Bool)),
            (param::SOFT_FAILURE, self.soft_failure.map(Value::Bool)),
            (param::IMAGE_SIZE, self.image_size.map(Value::Uint)),
            (param::CONTENT, bytes(&self.content)),
            (param::ENCRYPTION_INFO, bytes(&self.encryption_info)),
            (param::URI, self.uri.as_deref().map(Value::Text)),
            (
                param::SOURCE_COMPONENT,
                self.source_component.map(Value::Uint),
            ),
            (param::INVOKE_ARGS, bytes(&self.invoke_args)),
            (param::DEVICE_ID, bytes(&self.device_id)),
            (param::FETCH_ARGUMENTS, bytes(&self.fetch_arguments)),
        ]
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, SuitError> {
        let n = r.map("SUIT_Parameters")?;
        let mut p = Self::default();
        let mut seen = Vec::new();
        for _ in 0..n {
            let key = crate::cbor::int_key(r, &mut seen, "parameter key")?;
            match key {
                1 => {
                    p.vendor_id = Some(if r.next_type()? == minicbor::data::Type::Tag {
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

/// A set parameter's value, as [`Parameters::fields`] lists it for the encoder.
#[derive(Clone, Copy)]
enum Value<'a> {
    Bytes(&'a [u8]),
    /// A vendor ID as CBOR PEN: tag 112 over the bytes.
    Pen(&'a [u8]),
    /// `bstr .cbor SUIT_Digest`.
    Digest(&'a Digest),
    Uint(u64),
    Bool(bool),
    Text(&'a str),
}

impl Value<'_> {
    /// Writes the value: one item.
    fn encode(self, e: &mut VecEncoder<'_>) -> Result<(), EncodeError> {
        match self {
            Self::Bytes(b) => e.bytes(b)?,
            Self::Pen(b) => e.tag(Tag::new(112))?.bytes(b)?,
            Self::Digest(d) => e.bytes(&d.to_cbor())?,
            Self::Uint(n) => e.u64(n)?,
            Self::Bool(b) => e.bool(b)?,
            Self::Text(t) => e.str(t)?,
        };
        Ok(())
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
    r.expect_empty("trailing bytes after command sequence")?;
    strict_at(bytes, base, "SUIT_Command_Sequence is not well-formed CBOR")?;
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
        if r.next_type()? == minicbor::data::Type::Null && i == m - 1 {
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
    Ok(r.u64("reporting policy")?)
}

fn index_arg(r: &mut Reader<'_>) -> Result<IndexArg, SuitError> {
    match r.next_type()? {
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
