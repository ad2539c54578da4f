//! What an Update should carry, computed from policy in pure code.
//!
//! Inputs: the device's policy and the latest releases it names, what the TAM recorded as
//! installed (from the device's Successes), and the Agent's own wishes from the
//! QueryResponse (`requested-tc-list`, `unneeded-manifest-list`). Rules:
//! * a TC is sent when policy wants it (or the Agent asked for it and policy lets it ask)
//!   and the release's sequence number is higher than the installed one (never lower or
//!   equal: SUIT rollback protection, and nothing for what is up to date);
//! * dependencies are sent before their dependents; a TC whose dependency has no release
//!   is not sent;
//! * a manifest is unlinked when it is installed and policy no longer names it, or when
//!   the Agent calls it unneeded and policy does not require it.

use teep_proto::{ComponentId, QueryResponse, SystemPropertyClaims};
use teep_suit::{Envelope, Manifest};

use crate::store::{DeviceView, Installed, TcRelease};

/// The content of an Update.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan<'a> {
    /// Releases to send, dependencies first.
    pub send: Vec<&'a TcRelease>,
    /// Manifest IDs to unlink.
    pub unlink: Vec<ComponentId>,
    /// Requested TCs the policy does not let this device ask for (logged).
    pub refused: Vec<ComponentId>,
    /// Manifest IDs of releases in `send` the Agent already has the binary of
    /// (have-binary with exactly their sequence number): sent without integrated payloads.
    pub have_binary: Vec<ComponentId>,
}

impl Plan<'_> {
    /// Nothing to send and nothing to unlink.
    pub fn is_empty(&self) -> bool {
        self.send.is_empty() && self.unlink.is_empty()
    }

    /// The envelope to send for `release`: without integrated payloads when the Agent
    /// has the binary (the device checks it against the manifest's digest), else as stored.
    pub fn envelope(&self, release: &TcRelease) -> Vec<u8> {
        if !self.have_binary.contains(&release.manifest_id) {
            return release.envelope.to_vec();
        }
        // Stored envelopes were verified at upload; one that no longer decodes goes as is.
        Envelope::decode(&release.envelope)
            .map_or_else(|_| release.envelope.to_vec(), |e| e.without_integrated())
    }
}

fn installed<'a>(list: &'a [Installed], id: &ComponentId) -> Option<&'a Installed> {
    list.iter().find(|i| &i.manifest_id == id)
}

/// Computes the plan for `view` and the Agent's `response`.
pub fn plan<'a>(view: &'a DeviceView, response: &QueryResponse) -> Plan<'a> {
    let none = Vec::new();
    let have = view.device.as_ref().map_or(&none, |d| &d.installed);
    let mut wanted: Vec<&ComponentId> = view.policy.install.iter().collect();
    let mut refused = Vec::new();
    let mut have_binary = Vec::new();
    let permitted = |manifest: &ComponentId| {
        view.policy.requestable.contains(manifest) || view.policy.install.contains(manifest)
    };
    for req in response.requested_tc_list.iter().flatten() {
        let id = &req.component_id;
        let new_enough = |r: &TcRelease| {
            req.tc_manifest_sequence_number
                .is_none_or(|min| r.sequence >= min)
        };
        // `component-id` names the TC, which the Agent knows by the component it runs (the
        // TA's ID, `.../ta`): a release matches by its manifest ID or by a component its
        // manifest installs. Permission is always the release's manifest ID's.
        let found = release(view, id).or_else(|| {
            view.releases
                .iter()
                .find(|r| permitted(&r.manifest_id) && installs(r, id))
        });
        match found {
            Some(r) if permitted(&r.manifest_id) && new_enough(r) => {
                if !wanted.contains(&&r.manifest_id) {
                    wanted.push(&r.manifest_id);
                }
                if req.have_binary == Some(true)
                    && req.tc_manifest_sequence_number == Some(r.sequence)
                {
                    have_binary.push(r.manifest_id.clone());
                }
            }
            _ => refused.push(id.clone()),
        }
    }
    let mut send = Vec::new();
    let mut visiting = Vec::new();
    let mut kept: Vec<&ComponentId> = Vec::new();
    for id in &wanted {
        visit(view, have, id, &mut send, &mut visiting, &mut kept);
    }
    let unneeded = response.unneeded_manifest_list.iter().flatten();
    let mut unlink: Vec<ComponentId> = have
        .iter()
        .map(|i| &i.manifest_id)
        .filter(|id| !kept.contains(id) && !view.policy.requestable.contains(id))
        .cloned()
        .collect();
    for id in unneeded {
        if !kept.contains(&id) && !unlink.contains(id) && installed(have, id).is_some() {
            unlink.push(id.clone());
        }
    }
    Plan {
        send,
        unlink,
        refused,
        have_binary,
    }
}

/// What the device holds, from the tc-list of its verified QueryResponse: the record the
/// plan starts from. Successes alone cannot keep the record right (a Success lost on the
/// way, or a stale one processed after a newer session, leaves it claiming what the device
/// does not hold, or missing what it does), so every QueryResponse that lists the TCs
/// replaces the record. An entry is matched by manifest ID and manifest digest with a
/// release the view holds, else with the old record; a digest the TAM does not know
/// (an older release, another TAM's) is recorded at sequence 0, so that policy updates or
/// unlinks it. `None` (the TAM did not ask for the list) keeps the record.
pub fn reconcile(
    view: &DeviceView,
    recorded: &[Installed],
    tc_list: Option<&[SystemPropertyClaims]>,
) -> Vec<Installed> {
    let Some(tc_list) = tc_list else {
        return recorded.to_vec();
    };
    let mut out: Vec<Installed> = Vec::with_capacity(tc_list.len());
    for entry in tc_list {
        let id = &entry.component_id;
        // A malformed or non-SHA-256 digest matches nothing: recorded as unknown.
        let digest: Option<[u8; 32]> = entry
            .image_digest()
            .ok()
            .flatten()
            .and_then(|d| d.bytes.try_into().ok());
        let matches = |manifest_id: &ComponentId, d: &[u8; 32]| {
            manifest_id == id && digest.as_ref() == Some(d)
        };
        let sequence = view
            .releases
            .iter()
            .find(|r| matches(&r.manifest_id, &r.digest))
            .map(|r| r.sequence)
            .or_else(|| {
                recorded
                    .iter()
                    .find(|i| matches(&i.manifest_id, &i.digest))
                    .map(|i| i.sequence)
            })
            .unwrap_or(0);
        let digest = digest.unwrap_or([0; 32]);
        // One entry per manifest: a repeated entry does not duplicate the record.
        if !out.iter().any(|i| &i.manifest_id == id) {
            out.push(Installed {
                manifest_id: id.clone(),
                sequence,
                digest,
            });
        }
    }
    out
}

fn release<'a>(view: &'a DeviceView, id: &ComponentId) -> Option<&'a TcRelease> {
    view.releases.iter().find(|r| &r.manifest_id == id)
}

/// Whether `release`'s manifest installs component `id`, read from its stored envelope
/// (authenticated at upload); one that does not decode installs nothing.
fn installs(release: &TcRelease, id: &ComponentId) -> bool {
    Envelope::decode(&release.envelope)
        .and_then(|e| Manifest::decode(e.manifest_bytes))
        .is_ok_and(|m| m.common.components.contains(id))
}

/// Depth-first, dependencies first. Returns whether `id` is (or will be) on the device;
/// `kept` collects every manifest the plan keeps (wanted or depended on).
fn visit<'a>(
    view: &'a DeviceView,
    have: &[Installed],
    id: &'a ComponentId,
    send: &mut Vec<&'a TcRelease>,
    visiting: &mut Vec<&'a ComponentId>,
    kept: &mut Vec<&'a ComponentId>,
) -> bool {
    if send.iter().any(|r| &r.manifest_id == id) {
        return true;
    }
    // A dependency cycle cannot be installed in any order: refuse it.
    if visiting.contains(&id) {
        return false;
    }
    if !kept.contains(&id) {
        kept.push(id);
    }
    let current = installed(have, id);
    let Some(rel) = release(view, id) else {
        return current.is_some();
    };
    // Every dependency is visited, also when `id` itself is up to date: that keeps them
    // (not unlinked) and sends their own updates.
    visiting.push(id);
    let mut deps_ok = true;
    for dep in &rel.depends_on {
        deps_ok &= visit(view, have, dep, send, visiting, kept);
    }
    visiting.pop();
    if current.is_some_and(|i| i.sequence >= rel.sequence) {
        return true;
    }
    if deps_ok {
        send.push(rel);
    }
    deps_ok || current.is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Device, DeviceId, TcPolicy};
    use teep_proto::RequestedTcInfo;

    fn id(name: &str) -> ComponentId {
        ComponentId(vec![name.as_bytes().to_vec()])
    }

    fn rel(name: &str, sequence: u64, deps: &[&str]) -> TcRelease {
        TcRelease {
            manifest_id: id(name),
            sequence,
            digest: [sequence as u8; 32],
            signer: None,
            envelope: std::sync::Arc::default(),
            depends_on: deps.iter().map(|d| id(d)).collect(),
        }
    }

    fn view(install: &[&str], releases: Vec<TcRelease>, have: &[(&str, u64)]) -> DeviceView {
        DeviceView {
            device: Some(Device {
                id: DeviceId([1; 32]),
                key: Vec::new(),
                class: None,
                revoked: false,
                suite: None,
                attested_at: None,
                attestation_exempt: false,
                installed: have
                    .iter()
                    .map(|(n, s)| Installed {
                        manifest_id: id(n),
                        sequence: *s,
                        digest: [0; 32],
                    })
                    .collect(),
            }),
            policy: TcPolicy {
                install: install.iter().map(|n| id(n)).collect(),
                requestable: vec![id("opt")],
            },
            releases,
            outstanding: Vec::new(),
            revision: 1,
        }
    }

    fn names(p: &Plan<'_>) -> Vec<(ComponentId, u64)> {
        p.send
            .iter()
            .map(|r| (r.manifest_id.clone(), r.sequence))
            .collect()
    }

    #[test]
    fn dependencies_first_and_only_newer() {
        let v = view(
            &["app", "old"],
            vec![
                rel("app", 2, &["lib"]),
                rel("lib", 1, &[]),
                rel("old", 3, &[]),
            ],
            &[("old", 3), ("gone", 1)],
        );
        let p = plan(&v, &QueryResponse::default());
        assert_eq!(names(&p), vec![(id("lib"), 1), (id("app"), 2)]);
        assert_eq!(p.unlink, vec![id("gone")]);
    }

    #[test]
    fn up_to_date_dependent_keeps_its_dependency() {
        let v = view(
            &["app"],
            vec![rel("app", 2, &["lib"]), rel("lib", 1, &[])],
            &[("app", 2), ("lib", 1)],
        );
        let p = plan(&v, &QueryResponse::default());
        assert!(p.is_empty(), "{p:?}");
    }

    #[test]
    fn cycle_and_missing_dependency_are_not_sent() {
        let v = view(
            &["a", "c"],
            vec![
                rel("a", 1, &["b"]),
                rel("b", 1, &["a"]),
                rel("c", 1, &["nowhere"]),
            ],
            &[],
        );
        assert!(plan(&v, &QueryResponse::default()).send.is_empty());
    }

    #[test]
    fn requested_only_when_permitted_and_new_enough() {
        let v = view(&[], vec![rel("opt", 4, &[]), rel("secret", 1, &[])], &[]);
        let ask = |name: &str, min| RequestedTcInfo {
            component_id: id(name),
            tc_manifest_sequence_number: min,
            have_binary: None,
        };
        let qr = QueryResponse {
            requested_tc_list: Some(vec![ask("opt", Some(4)), ask("secret", None)]),
            ..QueryResponse::default()
        };
        let p = plan(&v, &qr);
        assert_eq!(names(&p), vec![(id("opt"), 4)]);
        assert_eq!(p.refused, vec![id("secret")]);
        let too_new = QueryResponse {
            requested_tc_list: Some(vec![ask("opt", Some(5))]),
            ..QueryResponse::default()
        };
        assert!(plan(&v, &too_new).send.is_empty());
    }

    #[test]
    fn unneeded_unlinked_unless_policy_requires_it() {
        let v = view(
            &["app"],
            vec![rel("app", 1, &[])],
            &[("app", 1), ("opt", 1)],
        );
        let qr = QueryResponse {
            unneeded_manifest_list: Some(vec![id("app"), id("opt")]),
            ..QueryResponse::default()
        };
        let p = plan(&v, &qr);
        assert!(p.send.is_empty());
        assert_eq!(p.unlink, vec![id("opt")]);
    }

    fn entry(name: &str, digest: [u8; 32]) -> SystemPropertyClaims {
        SystemPropertyClaims::new(id(name), &teep_suit::Digest::sha256(digest), None)
    }

    fn record(list: &[Installed]) -> Vec<(ComponentId, u64, [u8; 32])> {
        list.iter()
            .map(|i| (i.manifest_id.clone(), i.sequence, i.digest))
            .collect()
    }

    #[test]
    fn reconcile_follows_the_tc_list_not_the_record() {
        // Recorded: app v1 and gone (a lost Success for its unlink, a stale one for app).
        let v = view(
            &["app"],
            vec![rel("app", 2, &[])],
            &[("app", 1), ("gone", 3)],
        );
        let recorded = &v.device.as_ref().unwrap().installed;
        // The device says it holds app v2 (digest of the release) and an unknown "old".
        let list = [
            entry("app", [2; 32]),
            entry("old", [9; 32]),
            entry("app", [2; 32]),
        ];
        let got = reconcile(&v, recorded, Some(&list));
        assert_eq!(
            record(&got),
            vec![(id("app"), 2, [2; 32]), (id("old"), 0, [9; 32])]
        );
        // The old record's entry is matched by digest when the view lacks the release.
        let got = reconcile(&v, recorded, Some(&[entry("gone", [0; 32])]));
        assert_eq!(record(&got), vec![(id("gone"), 3, [0; 32])]);
        // Without a tc-list the record stays; an empty one empties it.
        assert_eq!(reconcile(&v, recorded, None), *recorded);
        assert!(reconcile(&v, recorded, Some(&[])).is_empty());
    }

    #[test]
    fn a_tc_list_entry_with_a_malformed_digest_is_recorded_as_unknown() {
        let v = view(&["app"], vec![rel("app", 2, &[])], &[("app", 2)]);
        let mut bad = entry("app", [2; 32]);
        // The digest parameter is a uint, not a bstr-wrapped SUIT_Digest.
        bad.parameters
            .insert(3, teep_proto::RawCbor::new(vec![0x01]).unwrap());
        let got = reconcile(&v, &v.device.as_ref().unwrap().installed, Some(&[bad]));
        assert_eq!(record(&got), vec![(id("app"), 0, [0; 32])]);
        // ... so the plan sends the release again (the device re-delivers it idempotently).
        let mut v2 = v.clone();
        v2.device.as_mut().unwrap().installed = got;
        assert_eq!(plan(&v2, &QueryResponse::default()).send.len(), 1);
    }
}
