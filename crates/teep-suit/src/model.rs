//! The SUIT envelope and manifest as borrowed views over the received bytes, with their
//! decoders. Views keep the exact encoded slices (digests are computed over received
//! bytes, never over re-encodings).

use alloc::string::String;
use alloc::vec::Vec;

use teep_cbor::Major;
use teep_cbor::encode::{write_bytes, write_head, write_int};

use crate::cbor::{Reader, SuitRead, int_key, strict};
use crate::error::{SuitError, malformed};

/// COSE algorithm id of SHA-256, the only digest SUIT makes mandatory.
pub const SHA256: i64 = -16;
/// CBOR tag of a tagged SUIT_Envelope.
pub const ENVELOPE_TAG: u64 = 107;

/// `SUIT_Component_Identifier`: a path of byte strings. The one component identifier type
/// of the workspace (teep-proto and the Broker re-export it). `Display`/`FromStr` give its
/// canonical text form, [`ComponentId::human`] a diagnostic one (see [`crate::component`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ComponentId(pub Vec<Vec<u8>>);

impl ComponentId {
    /// Builds an identifier from text segments (convenience for tests and tools).
    pub fn from_strs(segments: &[&str]) -> Self {
        Self(segments.iter().map(|s| s.as_bytes().to_vec()).collect())
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, SuitError> {
        let n = r.array("component identifier")?;
        let mut segments = Vec::new();
        for _ in 0..n {
            segments.push(r.bytes("component identifier segment")?.to_vec());
        }
        Ok(Self(segments))
    }

    /// Appends the encoding (an array of byte strings) to `out`. Infallible: every
    /// element is one byte string and the count is the slice's length, so it writes
    /// with teep-cbor's head writer and callers need no error path.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        write_head(Major::Array, self.0.len() as u64, out);
        for s in &self.0 {
            write_bytes(s, out);
        }
    }

    /// The CBOR encoding of this identifier.
    pub fn to_cbor(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }

    /// Decodes a CBOR-encoded identifier (exactly one item).
    pub fn from_cbor(bytes: &[u8]) -> Result<Self, SuitError> {
        let mut r = Reader::new(bytes);
        let id = Self::decode(&mut r)?;
        r.expect_empty("trailing bytes after component identifier")?;
        Ok(id)
    }
}

/// `SUIT_Digest`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Digest {
    /// `suit-digest-algorithm-id`: a COSE algorithm number (only SHA-256, -16, is supported).
    pub algorithm: i64,
    /// `suit-digest-bytes`: the digest value.
    pub bytes: Vec<u8>,
}

impl Digest {
    /// A SHA-256 digest (the only algorithm our manifests use).
    pub fn sha256(bytes: [u8; 32]) -> Self {
        Self {
            algorithm: SHA256,
            bytes: bytes.to_vec(),
        }
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, SuitError> {
        let n = r.array("SUIT_Digest")?;
        if n < 2 {
            return Err(malformed(
                "SUIT_Digest needs algorithm and bytes",
                r.position(),
            ));
        }
        let algorithm = r.i64("digest algorithm")?;
        let bytes = r.bytes("digest bytes")?.to_vec();
        for _ in 2..n {
            r.item("digest extension")?;
        }
        Ok(Self { algorithm, bytes })
    }

    /// Decodes a complete encoded SUIT_Digest (e.g. the contents of `bstr .cbor SUIT_Digest`).
    pub fn from_cbor(bytes: &[u8]) -> Result<Self, SuitError> {
        let mut r = Reader::new(bytes);
        let d = Self::decode(&mut r)?;
        r.expect_empty("trailing bytes after SUIT_Digest")?;
        strict(bytes, "SUIT_Digest is not well-formed CBOR")?;
        Ok(d)
    }

    /// Appends the encoded `SUIT_Digest` (`[algorithm, bytes]`) to `out`; infallible
    /// like [`ComponentId::to_cbor`].
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        write_head(Major::Array, 2, out);
        write_int(self.algorithm, out);
        write_bytes(&self.bytes, out);
    }

    /// The encoded `SUIT_Digest` (what `suit-parameter-image-digest` wraps in a bstr).
    pub fn to_cbor(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }

    /// True when this is a SHA-256 digest equal to `sha256`.
    pub fn matches_sha256(&self, sha256: &[u8; 32]) -> Result<bool, SuitError> {
        if self.algorithm != SHA256 {
            return Err(SuitError::UnsupportedDigestAlgorithm(self.algorithm));
        }
        Ok(self.bytes.as_slice() == sha256.as_slice())
    }
}

/// A manifest member that may be severed: present as a bstr-wrapped structure, or replaced
/// by the digest of the element that now travels in the envelope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Member<'a> {
    /// Contents of the bstr (the encoded command sequence or text map).
    Present(&'a [u8]),
    /// Severed: the digest of the element that travels in the envelope instead.
    Severed(Digest),
}

/// A map member the decoder does not know: its key and encoded value, kept only when
/// decoding for inspection ([`Manifest::decode_keeping_unknown`],
/// [`Envelope::decode_keeping_unknown`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownMember<'a> {
    /// The member's key.
    pub key: i64,
    /// The value's complete CBOR encoding, as received.
    pub value: &'a [u8],
}

/// What a decoder does with members it does not know. Processing rejects them (SUIT says
/// nothing about skipping an unknown member safely, so it could change the meaning of
/// what is executed); a viewer keeps them to show.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Unknown {
    Reject,
    Keep,
}

impl Unknown {
    /// An unknown member at `key` of `container`: kept, or the error.
    fn member<'a>(
        self,
        r: &mut Reader<'a>,
        container: &'static str,
        key: i64,
        kept: &mut Vec<UnknownMember<'a>>,
    ) -> Result<(), SuitError> {
        match self {
            Self::Reject => Err(SuitError::UnsupportedMember { container, key }),
            Self::Keep => {
                let value = r.item("unknown member")?;
                kept.push(UnknownMember { key, value });
                Ok(())
            }
        }
    }
}

/// The command sequences of a manifest, by their manifest key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Section {
    /// `suit-shared-sequence` inside common (reported with its common key, 4).
    Shared,
    /// `suit-validate` (7).
    Validate,
    /// `suit-load` (8).
    Load,
    /// `suit-invoke` (9).
    Invoke,
    /// `suit-dependency-resolution` (15, severable).
    DependencyResolution,
    /// `suit-payload-fetch` (16, severable).
    PayloadFetch,
    /// `suit-candidate-verification` (18, severable; trust domains).
    CandidateVerification,
    /// `suit-install` (20, severable).
    Install,
    /// `suit-uninstall` (24; trust domains).
    Uninstall,
}

impl Section {
    /// The key in SUIT_Manifest (for Shared: its key in SUIT_Common).
    pub const fn key(self) -> u64 {
        match self {
            Self::Shared => 4,
            Self::Validate => 7,
            Self::Load => 8,
            Self::Invoke => 9,
            Self::DependencyResolution => 15,
            Self::PayloadFetch => 16,
            Self::CandidateVerification => 18,
            Self::Install => 20,
            Self::Uninstall => 24,
        }
    }

    /// The section's short name, as reports and the JSON views print it.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Shared => "shared",
            Self::Validate => "validate",
            Self::Load => "load",
            Self::Invoke => "invoke",
            Self::DependencyResolution => "dependency-resolution",
            Self::PayloadFetch => "payload-fetch",
            Self::CandidateVerification => "candidate-verification",
            Self::Install => "install",
            Self::Uninstall => "uninstall",
        }
    }

    /// Whether the element may be severed into the envelope.
    pub const fn severable(self) -> bool {
        matches!(
            self,
            Self::DependencyResolution
                | Self::PayloadFetch
                | Self::CandidateVerification
                | Self::Install
        )
    }

    /// The sequences of the Update procedure, in execution order.
    pub const UPDATE: [Self; 5] = [
        Self::DependencyResolution,
        Self::PayloadFetch,
        Self::CandidateVerification,
        Self::Install,
        Self::Validate,
    ];
    /// The sequences of the Invocation procedure, in execution order.
    pub const INVOCATION: [Self; 3] = [Self::Validate, Self::Load, Self::Invoke];
}

/// A dependency declared in `suit-dependencies`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dependency {
    /// Component index of the dependency (may lie beyond the components list).
    pub index: u64,
    /// `suit-dependency-prefix`: where the dependency's manifest is stored, if given.
    pub prefix: Option<ComponentId>,
}

/// `SUIT_Common`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Common<'a> {
    /// `suit-components`: the component identifiers, by component index.
    pub components: Vec<ComponentId>,
    /// `suit-dependencies` (trust domains): which indices are dependency manifests.
    pub dependencies: Vec<Dependency>,
    /// Contents of the bstr-wrapped shared sequence.
    pub shared_sequence: Option<&'a [u8]>,
}

impl<'a> Common<'a> {
    fn decode(bytes: &'a [u8]) -> Result<Self, SuitError> {
        let mut r = Reader::new(bytes);
        let n = r.map("SUIT_Common")?;
        let mut seen = Vec::new();
        let mut common = Self::default();
        for _ in 0..n {
            match int_key(&mut r, &mut seen, "SUIT_Common key")? {
                1 => {
                    let m = r.map("suit-dependencies")?;
                    for _ in 0..m {
                        let index = r.u64("dependency index")?;
                        let fields = r.map("SUIT_Dependency_Metadata")?;
                        let mut prefix = None;
                        for _ in 0..fields {
                            match r.i64("dependency metadata key")? {
                                1 => prefix = Some(ComponentId::decode(&mut r)?),
                                key => {
                                    return Err(SuitError::UnsupportedMember {
                                        container: "dependency metadata",
                                        key,
                                    });
                                }
                            }
                        }
                        if common.dependencies.iter().any(|d| d.index == index) {
                            return Err(malformed("duplicate dependency index", r.position()));
                        }
                        common.dependencies.push(Dependency { index, prefix });
                    }
                }
                2 => {
                    let m = r.array("suit-components")?;
                    for _ in 0..m {
                        common.components.push(ComponentId::decode(&mut r)?);
                    }
                }
                4 => common.shared_sequence = Some(r.bytes("suit-shared-sequence")?),
                key => {
                    return Err(SuitError::UnsupportedMember {
                        container: "common",
                        key,
                    });
                }
            }
        }
        r.expect_empty("trailing bytes after SUIT_Common")?;
        strict(bytes, "SUIT_Common is not well-formed CBOR")?;
        Ok(common)
    }

    /// Size of the component index space: the components list, extended to cover
    /// dependency indices beyond it (every published dependency example does this).
    pub fn index_space(&self) -> usize {
        let deps = self
            .dependencies
            .iter()
            .map(|d| {
                usize::try_from(d.index)
                    .unwrap_or(usize::MAX)
                    .saturating_add(1)
            })
            .max()
            .unwrap_or(0);
        self.components.len().max(deps)
    }

    /// The `suit-dependencies` entry for component `index`, if it is a dependency.
    pub fn dependency(&self, index: u64) -> Option<&Dependency> {
        self.dependencies.iter().find(|d| d.index == index)
    }

    /// Identifier of the component at `index`: a listed component, or the dependency's
    /// prefix when the index lies beyond the list.
    pub fn component_id(&self, index: u64) -> Option<ComponentId> {
        if let Some(prefix) = self.dependency(index).and_then(|d| d.prefix.as_ref()) {
            return Some(prefix.clone());
        }
        let i = usize::try_from(index).ok()?;
        self.components.get(i).cloned()
    }
}

/// `SUIT_Manifest`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest<'a> {
    /// `suit-manifest-version`: always 1 (others are rejected).
    pub version: u64,
    /// `suit-manifest-sequence-number`: the anti-rollback counter.
    pub sequence_number: u64,
    /// `suit-common`: components, dependencies and the shared sequence.
    pub common: Common<'a>,
    /// `suit-reference-uri`: where the manifest can be fetched.
    pub reference_uri: Option<&'a str>,
    /// `suit-manifest-component-id` (trust domains): where the manifest is stored.
    pub manifest_component_id: Option<ComponentId>,
    /// `suit-validate`: contents of the bstr-wrapped command sequence.
    pub validate: Option<&'a [u8]>,
    /// `suit-load`: contents of the bstr-wrapped command sequence.
    pub load: Option<&'a [u8]>,
    /// `suit-invoke`: contents of the bstr-wrapped command sequence.
    pub invoke: Option<&'a [u8]>,
    /// `suit-uninstall` (trust domains): contents of the bstr-wrapped command sequence.
    pub uninstall: Option<&'a [u8]>,
    /// `suit-dependency-resolution` (severable).
    pub dependency_resolution: Option<Member<'a>>,
    /// `suit-payload-fetch` (severable).
    pub payload_fetch: Option<Member<'a>>,
    /// `suit-candidate-verification` (severable; trust domains).
    pub candidate_verification: Option<Member<'a>>,
    /// `suit-install` (severable).
    pub install: Option<Member<'a>>,
    /// `suit-text` (severable); kept, never interpreted.
    pub text: Option<Member<'a>>,
    /// Members this decoder does not know (only from [`Manifest::decode_keeping_unknown`]).
    pub unknown: Vec<UnknownMember<'a>>,
}

impl<'a> Manifest<'a> {
    /// Decodes the contents of the manifest bstr. Version is checked first: a manifest of
    /// another version is rejected before anything else is interpreted.
    pub fn decode(bytes: &'a [u8]) -> Result<Self, SuitError> {
        Self::decode_with(bytes, Unknown::Reject)
    }

    /// [`Manifest::decode`] that keeps unknown members in `unknown` instead of failing:
    /// for showing a manifest, never for processing it.
    pub fn decode_keeping_unknown(bytes: &'a [u8]) -> Result<Self, SuitError> {
        Self::decode_with(bytes, Unknown::Keep)
    }

    fn decode_with(bytes: &'a [u8], unknown: Unknown) -> Result<Self, SuitError> {
        let mut r = Reader::new(bytes);
        let n = r.map("SUIT_Manifest")?;
        let mut seen = Vec::new();
        let mut version = None;
        let mut sequence_number = None;
        let mut common = None;
        let mut m = Self {
            version: 0,
            sequence_number: 0,
            common: Common::default(),
            reference_uri: None,
            manifest_component_id: None,
            validate: None,
            load: None,
            invoke: None,
            uninstall: None,
            dependency_resolution: None,
            payload_fetch: None,
            candidate_verification: None,
            install: None,
            text: None,
            unknown: Vec::new(),
        };
        for _ in 0..n {
            match int_key(&mut r, &mut seen, "SUIT_Manifest key")? {
                1 => {
                    let v = r.u64("manifest version")?;
                    if v != 1 {
                        return Err(SuitError::UnsupportedVersion(v));
                    }
                    version = Some(v);
                }
                2 => sequence_number = Some(r.u64("manifest sequence number")?),
                3 => common = Some(Common::decode(r.bytes("suit-common")?)?),
                4 => m.reference_uri = Some(r.str("suit-reference-uri")?),
                5 => m.manifest_component_id = Some(ComponentId::decode(&mut r)?),
                7 => m.validate = Some(r.bytes("suit-validate")?),
                8 => m.load = Some(r.bytes("suit-load")?),
                9 => m.invoke = Some(r.bytes("suit-invoke")?),
                24 => m.uninstall = Some(r.bytes("suit-uninstall")?),
                15 => m.dependency_resolution = Some(decode_member(&mut r)?),
                16 => m.payload_fetch = Some(decode_member(&mut r)?),
                18 => m.candidate_verification = Some(decode_member(&mut r)?),
                20 => m.install = Some(decode_member(&mut r)?),
                23 => m.text = Some(decode_member(&mut r)?),
                key => unknown.member(&mut r, "manifest", key, &mut m.unknown)?,
            }
        }
        r.expect_empty("trailing bytes after SUIT_Manifest")?;
        strict(bytes, "SUIT_Manifest is not well-formed CBOR")?;
        m.version = version.ok_or_else(|| malformed("manifest version missing", 0))?;
        m.sequence_number =
            sequence_number.ok_or_else(|| malformed("manifest sequence number missing", 0))?;
        m.common = common.ok_or_else(|| malformed("suit-common missing", 0))?;
        Ok(m)
    }

    /// The sequence stored under `section` (shared comes from common).
    pub fn member(&self, section: Section) -> Option<Member<'a>> {
        match section {
            Section::Shared => self.common.shared_sequence.map(Member::Present),
            Section::Validate => self.validate.map(Member::Present),
            Section::Load => self.load.map(Member::Present),
            Section::Invoke => self.invoke.map(Member::Present),
            Section::Uninstall => self.uninstall.map(Member::Present),
            Section::DependencyResolution => self.dependency_resolution.clone(),
            Section::PayloadFetch => self.payload_fetch.clone(),
            Section::CandidateVerification => self.candidate_verification.clone(),
            Section::Install => self.install.clone(),
        }
    }

    /// Names of the sections this manifest carries (present or severed).
    pub fn sections(&self) -> Vec<Section> {
        [
            Section::Shared,
            Section::DependencyResolution,
            Section::PayloadFetch,
            Section::CandidateVerification,
            Section::Install,
            Section::Validate,
            Section::Load,
            Section::Invoke,
            Section::Uninstall,
        ]
        .into_iter()
        .filter(|s| self.member(*s).is_some())
        .collect()
    }
}

/// A present sequence is a bstr; a severed one is a bare SUIT_Digest array.
fn decode_member<'a>(r: &mut Reader<'a>) -> Result<Member<'a>, SuitError> {
    if r.next_type()? == minicbor::data::Type::Array {
        Ok(Member::Severed(Digest::decode(r)?))
    } else {
        Ok(Member::Present(r.bytes("severable member")?))
    }
}

/// The authentication wrapper.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authentication<'a> {
    /// `suit-digest-bstr`, decoded: the digest of the bstr-wrapped manifest.
    pub digest: Digest,
    /// The encoded SUIT_Digest (contents of the first bstr): the detached COSE payload.
    pub digest_cbor: &'a [u8],
    /// Contents of each authentication-block bstr (tagged COSE structures).
    pub blocks: Vec<&'a [u8]>,
}

impl<'a> Authentication<'a> {
    fn decode(bytes: &'a [u8]) -> Result<Self, SuitError> {
        let mut r = Reader::new(bytes);
        let n = r.array("SUIT_Authentication")?;
        if n == 0 {
            return Err(malformed("SUIT_Authentication without digest", 0));
        }
        let digest_cbor = r.bytes("authentication digest")?;
        let digest = Digest::from_cbor(digest_cbor)?;
        let mut blocks = Vec::new();
        for _ in 1..n {
            blocks.push(r.bytes("authentication block")?);
        }
        r.expect_empty("trailing bytes after SUIT_Authentication")?;
        strict(bytes, "SUIT_Authentication is not well-formed CBOR")?;
        Ok(Self {
            digest,
            digest_cbor,
            blocks,
        })
    }
}

/// An element severed from the manifest and carried in the envelope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeveredElement<'a> {
    /// The manifest key of the element (a [`Section`] key or `suit-text`, 23).
    pub key: u64,
    /// Encoded bstr including its header (what the manifest's digest covers).
    pub encoded: &'a [u8],
    /// Contents of the bstr (the element itself).
    pub contents: &'a [u8],
}

/// Where a manifest says its TC comes from (see [`Envelope::summary`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ManifestUri {
    /// The manifest's `suit-reference-uri` (also what reports carry).
    Reference(String),
    /// No reference URI: the first `uri` parameter of the install sequence (the payload's).
    Install(String),
}

/// An envelope as a TAM lists it ([`Envelope::summary`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    /// `suit-manifest-component-id`, when the manifest has one.
    pub manifest_component_id: Option<ComponentId>,
    /// `suit-manifest-sequence-number`.
    pub sequence_number: u64,
    /// The digest in the authentication wrapper (what the signatures cover).
    pub digest: Digest,
    /// Where the TC comes from, if the manifest says.
    pub uri: Option<ManifestUri>,
    /// The components the manifest writes: `suit-components` without the indices that
    /// `suit-dependencies` names (so what a device reports in its tc-list after install).
    pub components: Vec<ComponentId>,
    /// Its dependencies' manifest component IDs, by ascending index (each one's
    /// `dependency-prefix`, or the listed component at its index; a dependency with
    /// neither is not addressable and left out): what a TAM must deliver first.
    pub dependencies: Vec<ComponentId>,
}

/// Nesting the URI search follows (try-each / run-sequence bodies).
const URI_SEARCH_DEPTH: usize = 8;

fn first_uri(sequence: &[u8], depth: usize) -> Result<Option<String>, SuitError> {
    use crate::command::{Command, parse_sequence};
    for step in parse_sequence(sequence, 0)? {
        let nested: Vec<&[u8]> = match step.command {
            Command::OverrideParameters(p) | Command::SetParameters(p) => match p.uri {
                Some(uri) => return Ok(Some(uri)),
                None => continue,
            },
            Command::TryEach(branches, _) => branches.iter().map(|b| b.bytes).collect(),
            Command::RunSequence(body) => alloc::vec![body.bytes],
            _ => continue,
        };
        if depth < URI_SEARCH_DEPTH {
            for body in nested {
                if let Some(uri) = first_uri(body, depth + 1)? {
                    return Ok(Some(uri));
                }
            }
        }
    }
    Ok(None)
}

/// `SUIT_Envelope` (tagged or not).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope<'a> {
    /// Whether the envelope carried CBOR tag 107.
    pub tagged: bool,
    /// Key 2's value including its bstr header.
    pub authentication_bstr: &'a [u8],
    /// `suit-authentication-wrapper`, decoded.
    pub authentication: Authentication<'a>,
    /// Key 3's value including its bstr header: what the authenticated digest covers.
    pub manifest_bstr: &'a [u8],
    /// Contents of the manifest bstr.
    pub manifest_bytes: &'a [u8],
    /// Severed elements carried in the envelope under their manifest keys (the manifest
    /// holds their digests).
    pub severed: Vec<SeveredElement<'a>>,
    /// Integrated payloads and integrated dependencies, by their tstr key.
    pub integrated: Vec<(&'a str, &'a [u8])>,
    /// Members this decoder does not know (only from [`Envelope::decode_keeping_unknown`]).
    pub unknown: Vec<UnknownMember<'a>>,
}

impl<'a> Envelope<'a> {
    /// Decodes an envelope (optionally tag 107). Nothing inside the manifest is
    /// interpreted here: that waits until the envelope is authenticated.
    pub fn decode(bytes: &'a [u8]) -> Result<Self, SuitError> {
        Self::decode_with(bytes, Unknown::Reject)
    }

    /// [`Envelope::decode`] that keeps unknown integer-keyed members in `unknown` instead
    /// of failing: for showing an envelope, never for processing it.
    pub fn decode_keeping_unknown(bytes: &'a [u8]) -> Result<Self, SuitError> {
        Self::decode_with(bytes, Unknown::Keep)
    }

    fn decode_with(bytes: &'a [u8], unknown: Unknown) -> Result<Self, SuitError> {
        let mut r = Reader::new(bytes);
        let tagged = r.next_type()? == minicbor::data::Type::Tag;
        if tagged {
            let tag = r.tag("envelope tag")?;
            if tag != ENVELOPE_TAG {
                return Err(malformed("not a SUIT_Envelope tag", 0));
            }
        }
        let n = r.map("SUIT_Envelope")?;
        let mut seen_int = Vec::new();
        let mut authentication = None;
        let mut manifest = None;
        let mut severed = Vec::new();
        let mut integrated: Vec<(&str, &[u8])> = Vec::new();
        let mut kept = Vec::new();
        for _ in 0..n {
            if r.is_int() {
                match int_key(&mut r, &mut seen_int, "SUIT_Envelope key")? {
                    2 => {
                        let (encoded, contents) = r.bytes_with_header("auth wrapper")?;
                        authentication = Some((encoded, Authentication::decode(contents)?));
                    }
                    3 => manifest = Some(r.bytes_with_header("suit-manifest")?),
                    // Severable elements: dependency-resolution, payload-fetch,
                    // candidate-verification, install, text.
                    key @ (15 | 16 | 18 | 20 | 23) => {
                        let (encoded, contents) = r.bytes_with_header("severed element")?;
                        severed.push(SeveredElement {
                            key: key.unsigned_abs(),
                            encoded,
                            contents,
                        });
                    }
                    // Severed CoSWID (update-management): carried, never used.
                    14 => {
                        r.item("severed CoSWID")?;
                    }
                    key => unknown.member(&mut r, "envelope", key, &mut kept)?,
                }
            } else {
                let at = r.position();
                let key = r.str("envelope key")?;
                if integrated.iter().any(|(k, _)| *k == key) {
                    return Err(malformed("duplicate integrated payload key", at));
                }
                integrated.push((key, r.bytes("integrated payload")?));
            }
        }
        r.expect_empty("trailing bytes after SUIT_Envelope")?;
        // What the walk skipped (CoSWID, unknown members kept for showing) is held to the
        // same rules: no indefinite length or repeated key anywhere in the envelope.
        strict(bytes, "SUIT_Envelope is not well-formed CBOR")?;
        let (authentication_bstr, authentication) =
            authentication.ok_or_else(|| malformed("authentication wrapper missing", 0))?;
        let (manifest_bstr, manifest_bytes) =
            manifest.ok_or_else(|| malformed("manifest missing", 0))?;
        Ok(Self {
            tagged,
            authentication_bstr,
            authentication,
            manifest_bstr,
            manifest_bytes,
            severed,
            integrated,
            unknown: kept,
        })
    }

    /// The envelope with only its authentication wrapper and manifest: what a device keeps
    /// of an installed manifest (payloads are installed, severable sequences already ran).
    /// Built from the received slices, so the digest and signatures still verify.
    pub fn stripped(&self) -> Vec<u8> {
        let mut out =
            Vec::with_capacity(self.authentication_bstr.len() + self.manifest_bstr.len() + 8);
        if self.tagged {
            out.extend_from_slice(&[0xd8, ENVELOPE_TAG as u8]);
        }
        out.extend_from_slice(&[0xa2, 0x02]);
        out.extend_from_slice(self.authentication_bstr);
        out.push(0x03);
        out.extend_from_slice(self.manifest_bstr);
        out
    }

    /// The envelope without its integrated payloads and dependencies: for a device that
    /// already holds the binary (TEEP have-binary). The authentication wrapper, manifest
    /// and severed elements are the received slices, so the signature (which covers the
    /// manifest digest, not the integrated members) still verifies. The CoSWID, never
    /// used, is not carried.
    pub fn without_integrated(&self) -> Vec<u8> {
        let severed: usize = self.severed.iter().map(|s| s.encoded.len() + 1).sum();
        let mut out = Vec::with_capacity(
            self.authentication_bstr.len() + self.manifest_bstr.len() + severed + 8,
        );
        if self.tagged {
            out.extend_from_slice(&[0xd8, ENVELOPE_TAG as u8]);
        }
        // At most 2 + 5 members and keys below 24: one-byte map header and keys.
        out.push(0xa0 + 2 + self.severed.len() as u8);
        out.push(0x02);
        out.extend_from_slice(self.authentication_bstr);
        out.push(0x03);
        out.extend_from_slice(self.manifest_bstr);
        for s in &self.severed {
            out.push(s.key as u8);
            out.extend_from_slice(s.encoded);
        }
        out
    }

    /// What a TAM keeps about a TC's manifest: its manifest component ID, sequence
    /// number, digest, URI, the components it writes and its dependencies, read without
    /// any trust anchor.
    ///
    /// Nothing here is authenticated: the digest is the authentication wrapper's claim
    /// and is not recomputed, the manifest is decoded without checking a signature, a
    /// severed install sequence is used without checking its digest. A TAM calls this
    /// only on envelopes it has verified itself (`verify::authenticate` on upload), never
    /// to decide about an envelope it has not.
    ///
    /// # Errors
    /// The manifest does not decode ([`SuitError::Malformed`] and the like).
    pub fn summary(&self) -> Result<Summary, SuitError> {
        let manifest = Manifest::decode(self.manifest_bytes)?;
        let uri = match manifest.reference_uri {
            Some(uri) => Some(ManifestUri::Reference(String::from(uri))),
            None => self.install_uri(&manifest)?.map(ManifestUri::Install),
        };
        let common = &manifest.common;
        let components = (0u64..)
            .zip(&common.components)
            .filter(|(index, _)| common.dependency(*index).is_none())
            .map(|(_, id)| id.clone())
            .collect();
        let dependencies = common
            .dependencies
            .iter()
            .filter_map(|d| common.component_id(d.index))
            .collect();
        Ok(Summary {
            manifest_component_id: manifest.manifest_component_id,
            sequence_number: manifest.sequence_number,
            digest: self.authentication.digest.clone(),
            uri,
            components,
            dependencies,
        })
    }

    /// The first `uri` parameter the install sequence sets, in command order (nested
    /// try-each and run-sequence bodies included, to a bounded depth).
    fn install_uri(&self, manifest: &Manifest<'_>) -> Result<Option<String>, SuitError> {
        let bytes = match &manifest.install {
            None => return Ok(None),
            Some(Member::Present(bytes)) => *bytes,
            Some(Member::Severed(_)) => match self.severed_element(Section::Install.key()) {
                Some(element) => element.contents,
                None => return Ok(None),
            },
        };
        first_uri(bytes, 0)
    }

    /// The severed element with manifest key `key`, if the envelope carries it.
    pub fn severed_element(&self, key: u64) -> Option<&SeveredElement<'a>> {
        self.severed.iter().find(|s| s.key == key)
    }

    /// The integrated payload or dependency under tstr key `key` (`"#tc"`), if present.
    pub fn integrated(&self, key: &str) -> Option<&'a [u8]> {
        self.integrated
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| *v)
    }
}
