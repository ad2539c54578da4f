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
    /// Manifest IDs whose latest release the device failed to install more than once
    /// and that wait ([`crate::store::Failed::held_until`]; logged).
    pub held: Vec<ComponentId>,
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

/// Computes the plan for `view` and the Agent's `response`, at `now` (Unix seconds: what
/// the device failed to install is held back for a while, [`crate::store::Failed::held_until`]).
pub fn plan<'a>(view: &'a DeviceView, response: &QueryResponse, now: u64) -> Plan<'a> {
    let have: &[Installed] = view.device.as_ref().map_or(&[], |d| &d.installed);
    let mut wanted: Vec<&ComponentId> = view.policy.install.iter().collect();
    let mut refused = Vec::new();
    let mut have_binary = Vec::new();
    let mut asked = Vec::new();
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
                asked.push(&r.manifest_id);
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
    // What the device failed to install again and again waits, unless it asks for it now.
    let failed = view.device.as_ref().map_or(&[][..], |d| &d.failed[..]);
    let mut walk = Walk {
        view,
        have,
        failed: failed
            .iter()
            .filter(|f| now < f.held_until() && !asked.contains(&&f.manifest_id))
            .map(|f| f.digest)
            .collect(),
        send: Vec::new(),
        visiting: Vec::new(),
        kept: Vec::new(),
        held: Vec::new(),
    };
    for id in &wanted {
        walk.visit(id);
    }
    let Walk {
        send, kept, held, ..
    } = walk;
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
        held,
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

/// The walk of the wanted manifests and their dependencies ([`Walk::visit`]).
struct Walk<'a> {
    view: &'a DeviceView,
    have: &'a [Installed],
    /// Digests of releases held back (failed, waiting, and not asked for again).
    failed: Vec<[u8; 32]>,
    /// Releases to send, dependencies first.
    send: Vec<&'a TcRelease>,
    /// The manifests being visited (a dependency cycle meets one again).
    visiting: Vec<&'a ComponentId>,
    /// Every manifest the plan keeps (wanted or depended on).
    kept: Vec<&'a ComponentId>,
    /// Manifests whose release is held back (in `failed`).
    held: Vec<ComponentId>,
}

impl<'a> Walk<'a> {
    /// Depth-first, dependencies first. Returns whether `id` is (or will be) on the
    /// device.
    fn visit(&mut self, id: &'a ComponentId) -> bool {
        if self.send.iter().any(|r| &r.manifest_id == id) {
            return true;
        }
        // A dependency cycle cannot be installed in any order: refuse it.
        if self.visiting.contains(&id) {
            return false;
        }
        if !self.kept.contains(&id) {
            self.kept.push(id);
        }
        let current = installed(self.have, id);
        let Some(rel) = release(self.view, id) else {
            return current.is_some();
        };
        // Every dependency is visited, also when `id` itself is up to date: that keeps
        // them (not unlinked) and sends their own updates.
        self.visiting.push(id);
        let mut deps_ok = true;
        for dep in &rel.depends_on {
            deps_ok &= self.visit(dep);
        }
        self.visiting.pop();
        if current.is_some_and(|i| i.sequence >= rel.sequence) {
            return true;
        }
        // A release held back after failures; what depends on it then goes only if an
        // earlier version of it is installed.
        if self.failed.contains(&rel.digest) {
            if !self.held.contains(id) {
                self.held.push(id.clone());
            }
            return current.is_some();
        }
        if deps_ok {
            self.send.push(rel);
        }
        deps_ok || current.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Device, DeviceId, Failed, TcPolicy};
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
                failed: Vec::new(),
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
        let p = plan(&v, &QueryResponse::default(), 0);
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
        let p = plan(&v, &QueryResponse::default(), 0);
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
        assert!(plan(&v, &QueryResponse::default(), 0).send.is_empty());
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
        let p = plan(&v, &qr, 0);
        assert_eq!(names(&p), vec![(id("opt"), 4)]);
        assert_eq!(p.refused, vec![id("secret")]);
        let too_new = QueryResponse {
            requested_tc_list: Some(vec![ask("opt", Some(5))]),
            ..QueryResponse::default()
        };
        assert!(plan(&v, &too_new, 0).send.is_empty());
    }

    /// `v` with the device having failed to install release `name` v`sequence`.
    fn failing(mut v: DeviceView, name: &str, sequence: u64) -> DeviceView {
        if let Some(d) = v.device.as_mut() {
            d.failed.push(Failed {
                manifest_id: id(name),
                digest: [sequence as u8; 32],
                failures: 2,
                at: 0,
            });
        }
        v
    }

    #[test]
    fn a_release_the_device_failed_is_held_back_with_what_needs_it() {
        // lib v3 failed twice; app v2 needs lib and lib is not installed: neither goes
        // until the wait is over.
        let v = failing(
            view(
                &["app", "other"],
                vec![
                    rel("app", 2, &["lib"]),
                    rel("lib", 3, &[]),
                    rel("other", 1, &[]),
                ],
                &[],
            ),
            "lib",
            3,
        );
        let p = plan(&v, &QueryResponse::default(), 0);
        assert_eq!(names(&p), vec![(id("other"), 1)]);
        assert_eq!(p.held, vec![id("lib")]);
        assert!(
            p.unlink.is_empty(),
            "a held manifest is still wanted: {p:?}"
        );
        let until = v.device.as_ref().unwrap().failed[0].held_until();
        let p = plan(&v, &QueryResponse::default(), until);
        assert_eq!(
            names(&p),
            vec![(id("lib"), 3), (id("app"), 2), (id("other"), 1)]
        );
        // With lib v1 installed, app v2 goes on it; lib stays at v1 and is not unlinked.
        let v = failing(
            view(
                &["app"],
                vec![rel("app", 2, &["lib"]), rel("lib", 3, &[])],
                &[("lib", 1)],
            ),
            "lib",
            3,
        );
        let p = plan(&v, &QueryResponse::default(), 0);
        assert_eq!(names(&p), vec![(id("app"), 2)]);
        assert!(p.unlink.is_empty());
    }

    #[test]
    fn a_failed_release_goes_again_when_asked_for_or_superseded() {
        let v = failing(view(&[], vec![rel("opt", 4, &[])], &[]), "opt", 4);
        let ask = RequestedTcInfo {
            component_id: id("opt"),
            tc_manifest_sequence_number: None,
            have_binary: None,
        };
        let qr = QueryResponse {
            requested_tc_list: Some(vec![ask]),
            ..QueryResponse::default()
        };
        let p = plan(&v, &qr, 0);
        assert_eq!(names(&p), vec![(id("opt"), 4)]);
        assert!(p.held.is_empty());
        // A new release of a failed manifest has another digest: it is sent.
        let v = failing(view(&["app"], vec![rel("app", 3, &[])], &[]), "app", 2);
        let p = plan(&v, &QueryResponse::default(), 0);
        assert_eq!(names(&p), vec![(id("app"), 3)]);
        assert!(p.held.is_empty());
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
        let p = plan(&v, &qr, 0);
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
        assert_eq!(plan(&v2, &QueryResponse::default(), 0).send.len(), 1);
    }
}
