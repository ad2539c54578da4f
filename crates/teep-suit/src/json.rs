//! JSON views of envelopes and reports (the `teep suit inspect` / `process` output):
//! keys are the CDDL names, byte strings lowercase hex, commands listed with their
//! section offsets so a report's record can be matched to its command.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use serde_json::{Map, Value, json};
use teep_cose::CryptoProvider;
use teep_cose::coset::{self, TaggedCborSerializable, iana::EnumI64};

use crate::command::{Command, IndexArg, Parameters, VendorId, parse_sequence};
use crate::error::SuitError;
use crate::model::{ComponentId, Digest, Envelope, Manifest, Member, Section, UnknownMember};
use crate::report::{Entry, Record, Report};

fn hex(b: &[u8]) -> Value {
    Value::String(hex::encode(b))
}

/// A component identifier as an array of hex strings.
pub fn component_id(id: &ComponentId) -> Value {
    Value::Array(id.0.iter().map(|s| hex(s)).collect())
}

/// A `SUIT_Digest` as `algorithm-id` and hex `digest-bytes`.
pub fn digest(d: &Digest) -> Value {
    json!({ "algorithm-id": d.algorithm, "digest-bytes": hex::encode(&d.bytes) })
}

/// Parameters as a map of their `suit-parameter-*` names to values.
pub fn parameters(p: &Parameters) -> Value {
    let mut m = Map::new();
    let mut put = |k: &str, v: Value| {
        m.insert(k.to_string(), v);
    };
    if let Some(v) = &p.vendor_id {
        put(
            "vendor-identifier",
            match v {
                VendorId::Uuid(b) => hex(b),
                VendorId::Pen(b) => json!({ "cbor-pen": hex::encode(b) }),
            },
        );
    }
    if let Some(v) = &p.class_id {
        put("class-identifier", hex(v));
    }
    if let Some(v) = &p.image_digest {
        put("image-digest", digest(v));
    }
    if let Some(v) = p.component_slot {
        put("component-slot", json!(v));
    }
    if let Some(v) = p.strict_order {
        put("strict-order", json!(v));
    }
    if let Some(v) = p.soft_failure {
        put("soft-failure", json!(v));
    }
    if let Some(v) = p.image_size {
        put("image-size", json!(v));
    }
    if let Some(v) = &p.content {
        put("content", hex(v));
    }
    if let Some(v) = &p.encryption_info {
        put("encryption-info", hex(v));
    }
    if let Some(v) = &p.uri {
        put("uri", json!(v));
    }
    if let Some(v) = p.source_component {
        put("source-component", json!(v));
    }
    if let Some(v) = &p.invoke_args {
        put("invoke-args", hex(v));
    }
    if let Some(v) = &p.device_id {
        put("device-identifier", hex(v));
    }
    if let Some(v) = &p.fetch_arguments {
        put("fetch-arguments", hex(v));
    }
    Value::Object(m)
}

fn command_name(n: i64) -> &'static str {
    match n {
        1 => "condition-vendor-identifier",
        2 => "condition-class-identifier",
        3 => "condition-image-match",
        5 => "condition-component-slot",
        6 => "condition-check-content",
        7 => "condition-dependency-integrity",
        8 => "condition-is-dependency",
        11 => "directive-process-dependency",
        12 => "directive-set-component-index",
        14 => "condition-abort",
        15 => "directive-try-each",
        18 => "directive-write",
        19 => "directive-set-parameters",
        20 => "directive-override-parameters",
        21 => "directive-fetch",
        22 => "directive-copy",
        23 => "directive-invoke",
        24 => "condition-device-identifier",
        31 => "directive-swap",
        32 => "directive-run-sequence",
        33 => "directive-unlink",
        _ => "unknown",
    }
}

/// A command sequence as JSON (or the decoding error where it stops).
pub fn sequence(bytes: &[u8], base: usize) -> Value {
    let steps = match parse_sequence(bytes, base) {
        Ok(s) => s,
        Err(e) => return json!({ "error": e.to_string() }),
    };
    let list = steps
        .iter()
        .map(|s| {
            let mut m = Map::new();
            m.insert("offset".into(), json!(s.offset));
            m.insert("command".into(), json!(command_name(s.command.number())));
            let arg = match &s.command {
                Command::Condition(_, p) | Command::Directive(_, p) => {
                    ("reporting-policy", json!(p))
                }
                Command::SetComponentIndex(IndexArg::One(i)) => ("index", json!(i)),
                Command::SetComponentIndex(IndexArg::All) => ("index", json!(true)),
                Command::SetComponentIndex(IndexArg::List(v)) => ("index", json!(v)),
                Command::OverrideParameters(p) | Command::SetParameters(p) => {
                    ("parameters", parameters(p))
                }
                Command::RunSequence(n) => ("sequence", sequence(n.bytes, n.offset)),
                Command::TryEach(branches, empty_ok) => {
                    let mut v: Vec<Value> = branches
                        .iter()
                        .map(|b| sequence(b.bytes, b.offset))
                        .collect();
                    if *empty_ok {
                        v.push(Value::Null);
                    }
                    ("alternatives", Value::Array(v))
                }
            };
            m.insert(arg.0.into(), arg.1);
            Value::Object(m)
        })
        .collect();
    Value::Array(list)
}

fn block(bytes: &[u8]) -> Value {
    if let Ok(s) = coset::CoseSign1::from_tagged_slice(bytes) {
        return json!({
            "cose": "COSE_Sign1",
            "alg": s.protected.header.alg.as_ref().map(alg_id),
            "kid": (!s.unprotected.key_id.is_empty()).then(|| hex::encode(&s.unprotected.key_id)),
            "signature": hex::encode(&s.signature),
        });
    }
    if let Ok(m) = coset::CoseMac0::from_tagged_slice(bytes) {
        return json!({
            "cose": "COSE_Mac0",
            "alg": m.protected.header.alg.as_ref().map(alg_id),
            "tag": hex::encode(&m.tag),
        });
    }
    json!({ "cose": "unsupported", "bytes": hex::encode(bytes) })
}

fn alg_id(a: &coset::Algorithm) -> Value {
    match a {
        coset::RegisteredLabelWithPrivate::Assigned(x) => json!(x.to_i64()),
        coset::RegisteredLabelWithPrivate::PrivateUse(x) => json!(x),
        coset::RegisteredLabelWithPrivate::Text(t) => json!(t),
    }
}

/// An envelope as JSON, without verifying its signature (`digest-matches` says whether
/// the manifest matches the digest in the authentication wrapper).
///
/// Members this crate does not know are shown, not refused, as `"unknown-KEY"`: the hex of
/// their encoded value (processing still refuses them).
pub fn envelope(bytes: &[u8], provider: &dyn CryptoProvider) -> Result<Value, SuitError> {
    let env = Envelope::decode_keeping_unknown(bytes)?;
    let manifest = Manifest::decode_keeping_unknown(env.manifest_bytes)?;
    let computed = provider.sha256(env.manifest_bstr);
    let auth = &env.authentication;
    let mut sections = Map::new();
    for s in manifest.sections() {
        let Some(member) = manifest.member(s) else {
            continue;
        };
        sections.insert(
            s.name().into(),
            member_json(&env, member, s.key(), provider),
        );
    }
    let text = manifest.text.clone().map(|m| match m {
        Member::Present(b) => json!({ "cbor": hex::encode(b) }),
        Member::Severed(d) => json!({ "severed": digest(&d) }),
    });
    let integrated: Map<String, Value> = env
        .integrated
        .iter()
        .map(|(k, v)| {
            (
                String::from(*k),
                json!({ "length": v.len(), "sha256": hex::encode(provider.sha256(v)) }),
            )
        })
        .collect();
    let deps: Vec<Value> = manifest
        .common
        .dependencies
        .iter()
        .map(|d| json!({ "index": d.index, "dependency-prefix": d.prefix.as_ref().map(component_id) }))
        .collect();
    let mut manifest_view = json!({
        "manifest-version": manifest.version,
        "manifest-sequence-number": manifest.sequence_number,
        "reference-uri": manifest.reference_uri,
        "manifest-component-id": manifest.manifest_component_id.as_ref().map(component_id),
        "common": {
            "components": manifest.common.components.iter().map(component_id).collect::<Vec<_>>(),
            "dependencies": deps,
        },
        "sequences": sections,
        "text": text,
    });
    add_unknown(&mut manifest_view, &manifest.unknown);
    let mut view = json!({
        "type": "SUIT_Envelope",
        "tagged": env.tagged,
        "authentication-wrapper": {
            "digest": digest(&auth.digest),
            "digest-matches": auth.digest.matches_sha256(&computed).unwrap_or(false),
            "blocks": auth.blocks.iter().map(|b| block(b)).collect::<Vec<_>>(),
        },
        "manifest": manifest_view,
        "integrated": integrated,
    });
    add_unknown(&mut view, &env.unknown);
    Ok(view)
}

/// Unknown members as `"unknown-KEY": "<hex of the encoded value>"`.
fn add_unknown(view: &mut Value, members: &[UnknownMember<'_>]) {
    if let Value::Object(object) = view {
        for m in members {
            object.insert(format!("unknown-{}", m.key), hex(m.value));
        }
    }
}

fn member_json(
    env: &Envelope<'_>,
    member: Member<'_>,
    key: u64,
    provider: &dyn CryptoProvider,
) -> Value {
    match member.clone() {
        Member::Present(b) => sequence(b, 0),
        Member::Severed(d) => {
            let resolved = crate::verify::resolve_member(env, member, key, provider);
            json!({
                "severed": digest(&d),
                "in-envelope": env.severed_element(key).is_some(),
                "commands": resolved.ok().map(|b| sequence(b, 0)),
            })
        }
    }
}

fn record(r: &Record) -> Value {
    let section = [
        Section::Shared,
        Section::Validate,
        Section::Load,
        Section::Invoke,
        Section::DependencyResolution,
        Section::PayloadFetch,
        Section::CandidateVerification,
        Section::Install,
        Section::Uninstall,
    ]
    .into_iter()
    .find(|s| s.key() == r.section);
    json!({
        "manifest-id": r.manifest_id,
        "manifest-section": r.section,
        "section-name": section.map(Section::name),
        "section-offset": r.offset,
        "component-index": r.component_index,
        "properties": parameters(&r.properties),
    })
}

fn reason_name(reason: u8) -> &'static str {
    match reason {
        0 => "ok",
        1 => "cbor-parse",
        2 => "cose-unsupported",
        3 => "alg-unsupported",
        4 => "unauthorised",
        5 => "command-unsupported",
        6 => "component-unsupported",
        7 => "component-unauthorised",
        8 => "parameter-unsupported",
        9 => "severing-unsupported",
        10 => "condition-failed",
        11 => "operation-failed",
        _ => "invoke-pending",
    }
}

/// A SUIT report as JSON.
pub fn report(r: &Report) -> Value {
    let records: Vec<Value> = r
        .records
        .iter()
        .map(|e| match e {
            Entry::Record(rec) => record(rec),
            Entry::System(s) => {
                json!({ "system-component-id": component_id(&s.component), "properties": parameters(&s.properties) })
            }
        })
        .collect();
    let result = match &r.result {
        Ok(()) => json!(true),
        Err(f) => json!({
            "result-code": f.error.code(),
            "result-record": record(&f.record),
            "result-reason": reason_name(f.error.report_reason()),
            "error": f.error.to_string(),
        }),
    };
    let capabilities = r.capabilities.then(|| {
        json!({
            "component-capabilities": [[true]],
            "command-capabilities": crate::report::COMMANDS,
            "parameters-capabilities": crate::report::PARAMETERS,
            "crypt-algo-capabilities": crate::report::ALGORITHMS,
        })
    });
    json!({
        "type": "SUIT_Report",
        "suit-report-capability-report": capabilities,
        "suit-reference": {
            "manifest-uri": r.reference_uri,
            "manifest-digest": digest(&r.manifest_digest),
        },
        "suit-report-nonce": r.nonce.as_deref().map(hex::encode),
        "suit-report-records": records,
        "suit-report-result": result,
    })
}
