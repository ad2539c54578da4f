//! `teep trace --capture DIR`: the bodies a Broker captured (`teep device run --capture`)
//! as arrows, each message decoded with teep-proto WITHOUT verifying its signature (what
//! it claims, for reading, not for trusting). A capture is input from outside: a line of
//! the index that does not parse, a file name that is not a plain name in DIR, a body over
//! [`MAX_BODY`] or one that does not decode is skipped or drawn as undecodable, never
//! fatal; every string that came from a body is reduced to safe characters.

use std::path::Path;

use teep_broker::{CaptureEntry, INDEX_FILE};
use teep_proto::{ComponentId, ErrCode, Message, Numbering, Unverified};
use teep_suit::{Envelope, Manifest};

use super::{Arrow, From, Trace, clean};

/// Largest body read from a capture (the Broker's own default limit).
const MAX_BODY: u64 = teep_broker::DEFAULT_MAX_RESPONSE as u64;

/// Most component IDs named on one arrow (the rest are counted).
const MAX_IDS: usize = 6;

fn ids<'a>(label: &str, list: impl ExactSizeIterator<Item = &'a ComponentId>) -> Option<String> {
    let n = list.len();
    if n == 0 {
        return None;
    }
    let mut names: Vec<String> = list
        .take(MAX_IDS)
        .map(|id| clean(&id.to_string()))
        .collect();
    if n > MAX_IDS {
        names.push(format!("+{} more", n - MAX_IDS));
    }
    Some(format!("{label} [{}]", names.join(" ")))
}

/// A manifest-list entry: its manifest component ID and sequence number, as it claims.
fn envelope(bytes: &[u8]) -> String {
    let manifest = Envelope::decode_keeping_unknown(bytes)
        .ok()
        .and_then(|e| Manifest::decode_keeping_unknown(e.manifest_bytes).ok());
    match manifest {
        Some(m) => {
            let id = m.manifest_component_id.as_ref().map_or_else(
                || "(no manifest id)".to_owned(),
                |id| clean(&id.to_string()),
            );
            format!("{id}@{}", m.sequence_number)
        }
        None => "(undecodable envelope)".to_owned(),
    }
}

fn err_code(code: ErrCode) -> String {
    code.name().map_or_else(
        || format!("err-code {}", code.number(Numbering::Draft26)),
        str::to_owned,
    )
}

fn attestation(format: Option<&String>, payload: Option<&Vec<u8>>) -> Option<String> {
    payload.map(|p| {
        format!(
            "attestation {} ({} bytes)",
            format.map_or_else(|| "of no stated format".to_owned(), |f| clean(f)),
            p.len()
        )
    })
}

fn signature(u: &Unverified<'_>) -> String {
    let algs: Vec<String> = u
        .cose()
        .signatures
        .iter()
        .map(
            |s| match s.alg.and_then(teep_cose::Algorithm::from_cose_id) {
                Some(a) => format!("{a:?}"),
                None => format!("alg {:?}", s.alg),
            },
        )
        .collect();
    format!("{} {}", u.cose().structure.name(), algs.join("+"))
}

/// The summary of one decoded message: its type and what it says, field by field.
fn summary(message: &Message) -> (&'static str, Vec<String>) {
    let mut parts = Vec::new();
    let name = match message {
        Message::QueryRequest(q) => {
            let wants: Vec<&str> = teep_proto::DataItemRequested::NAMED
                .iter()
                .filter(|(bit, _)| q.data_item_requested.contains(*bit))
                .map(|(_, name)| *name)
                .collect();
            if !wants.is_empty() {
                parts.push(format!("wants {}", wants.join("+")));
            }
            if q.challenge.is_some() {
                parts.push("challenge".to_owned());
            }
            parts.extend(attestation(
                q.attestation_payload_format.as_ref(),
                q.attestation_payload.as_ref(),
            ));
            "QueryRequest"
        }
        Message::QueryResponse(r) => {
            parts.extend(attestation(
                r.attestation_payload_format.as_ref(),
                r.attestation_payload.as_ref(),
            ));
            if let Some(list) = &r.tc_list {
                parts.push(
                    ids("tc-list", list.iter().map(|c| &c.component_id))
                        .unwrap_or_else(|| "tc-list []".to_owned()),
                );
            }
            parts.extend(
                r.requested_tc_list
                    .as_ref()
                    .and_then(|l| ids("requested-tc-list", l.iter().map(|c| &c.component_id))),
            );
            parts.extend(
                r.unneeded_manifest_list
                    .as_ref()
                    .and_then(|l| ids("unneeded-manifest-list", l.iter())),
            );
            "QueryResponse"
        }
        Message::Update(u) => {
            if let Some(list) = u.manifest_list.as_ref().filter(|l| !l.is_empty()) {
                let mut names: Vec<String> =
                    list.iter().take(MAX_IDS).map(|e| envelope(e)).collect();
                if list.len() > MAX_IDS {
                    names.push(format!("+{} more", list.len() - MAX_IDS));
                }
                parts.push(format!("manifest-list [{}]", names.join(" ")));
            }
            parts.extend(
                u.unneeded_manifest_list
                    .as_ref()
                    .and_then(|l| ids("unneeded-manifest-list", l.iter())),
            );
            parts.extend(u.err_code.map(err_code));
            parts.extend(attestation(
                u.attestation_payload_format.as_ref(),
                u.attestation_payload.as_ref(),
            ));
            "Update"
        }
        Message::Success(s) => {
            if let Some(r) = &s.suit_reports {
                parts.push(format!("{} SUIT report(s)", r.len()));
            }
            "Success"
        }
        Message::Error(e) => {
            parts.push(err_code(e.err_code));
            if let Some(suites) = &e.supported_teep_cipher_suites {
                let algs: Vec<String> = suites
                    .iter()
                    .filter_map(teep_proto::CipherSuite::sign1_alg)
                    .map(|a| {
                        teep_cose::Algorithm::from_cose_id(a)
                            .map_or_else(|| format!("alg {a}"), |a| format!("{a:?}"))
                    })
                    .collect();
                parts.push(format!("supports [{}]", algs.join(" ")));
            }
            if let Some(r) = &e.suit_reports {
                parts.push(format!("{} SUIT report(s)", r.len()));
            }
            "Error"
        }
    };
    (name, parts)
}

/// The first eight bytes of a key id, hex: how the TAM's log names a device.
fn device_of(u: &Unverified<'_>) -> Option<String> {
    let kid = u.cose().signatures.first()?.kid.as_ref()?;
    Some(hex::encode(kid.get(..8).unwrap_or(kid)))
}

/// Reads a capture's body file: a plain file name in `dir`, at most [`MAX_BODY`] bytes.
fn body(dir: &Path, name: &str) -> Result<Vec<u8>, String> {
    let plain = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && !name.starts_with('.');
    if !plain {
        return Err("not a plain file name".to_owned());
    }
    let path = dir.join(name);
    let len = std::fs::metadata(&path).map_err(|e| e.to_string())?.len();
    if len > MAX_BODY {
        return Err(format!("{len} bytes, over the limit"));
    }
    std::fs::read(&path).map_err(|e| e.to_string())
}

fn time(ms: u64) -> String {
    let nanos = i128::from(ms) * 1_000_000;
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| ms.to_string())
}

/// One arrow per index entry (an empty POST and an answer with no content too: they open
/// and end sessions); lines that are not entries are counted in [`Trace::skipped`].
pub(crate) fn parse(dir: &Path, numbering: Numbering) -> anyhow::Result<Trace> {
    use anyhow::Context as _;
    let index_path = dir.join(INDEX_FILE);
    let index =
        std::fs::read(&index_path).with_context(|| format!("reading {}", index_path.display()))?;
    let mut trace = Trace::default();
    for line in String::from_utf8_lossy(&index).lines() {
        let Ok(entry) = serde_json::from_str::<CaptureEntry>(line) else {
            trace.skipped += 1;
            continue;
        };
        let from = match entry.direction.as_str() {
            "to-tam" => From::Agent,
            "from-tam" => From::Tam,
            _ => {
                trace.skipped += 1;
                continue;
            }
        };
        let mut arrow = Arrow {
            time: time(entry.time_ms),
            device: String::new(),
            from,
            message: String::new(),
            token: String::new(),
            detail: String::new(),
            dropped: false,
        };
        match (&entry.file, &entry.error) {
            (_, Some(error)) => {
                arrow.message = "no answer".to_owned();
                arrow.detail = clean(error);
                arrow.dropped = true;
            }
            (None, None) => {
                arrow.message = match (from, entry.status) {
                    (From::Agent, _) => "empty POST".to_owned(),
                    (From::Tam, Some(status)) => format!("HTTP {status}, session ends"),
                    (From::Tam, None) => "session ends".to_owned(),
                };
            }
            (Some(name), None) => match body(dir, name) {
                Err(why) => {
                    arrow.message = "unreadable body".to_owned();
                    arrow.detail = clean(&why);
                }
                Ok(bytes) => match Unverified::parse(&bytes, numbering) {
                    Err(e) => {
                        arrow.message = "undecodable message".to_owned();
                        arrow.detail = format!("{} bytes: {}", bytes.len(), clean(&e.to_string()));
                    }
                    Ok(u) => {
                        let (name, mut parts) = summary(u.message());
                        arrow.message = name.to_owned();
                        if let Some(t) = u.message().token() {
                            arrow.token = hex::encode(t.get(..4).unwrap_or(t));
                        }
                        if from == From::Agent {
                            arrow.device = device_of(&u).unwrap_or_default();
                        }
                        parts.push(signature(&u));
                        arrow.detail = parts.join(", ");
                    }
                },
            },
        }
        trace.arrows.push(arrow);
    }
    // A capture is one device's: every arrow goes on the lane its signed messages name.
    let device = trace
        .arrows
        .iter()
        .find(|a| !a.device.is_empty())
        .map(|a| a.device.clone())
        .unwrap_or_default();
    for a in &mut trace.arrows {
        a.device.clone_from(&device);
    }
    Ok(trace)
}

/// The header of a capture's text diagram.
pub(crate) const HEADER: &str =
    "decoded from a capture WITHOUT verifying signatures: what each message claims";
