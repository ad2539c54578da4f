//! What the builder generates: component IDs a device can map to files (none is a path
//! under another), encrypted payloads staged beside their component, and default
//! manifest IDs beside the TC.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers outside #[test] fns: a failure here is a failed test"
)]

mod common;
use common::{PROVIDER, spec};

use teep_cose::{Curve, PrivateKey};
use teep_suit::builder::{self, DependencySpec, ManifestSpec, PayloadLocation};
use teep_suit::{ComponentId, Envelope, Manifest};

/// `a` names `b` or a path under it (whole segments).
fn is_prefix(a: &ComponentId, b: &ComponentId) -> bool {
    b.0.starts_with(&a.0)
}

/// Every component ID a built envelope makes the device store: the components, the
/// dependencies' locations and the manifest's own.
fn stored_ids(envelope: &[u8]) -> Vec<ComponentId> {
    let env = Envelope::decode(envelope).unwrap();
    let manifest = Manifest::decode(env.manifest_bytes).unwrap();
    let mut ids = manifest.common.components.clone();
    ids.extend(
        manifest
            .common
            .dependencies
            .iter()
            .filter_map(|d| d.prefix.clone()),
    );
    ids.extend(manifest.manifest_component_id.clone());
    ids
}

fn assert_no_prefix(what: &str, ids: &[ComponentId]) {
    for (i, a) in ids.iter().enumerate() {
        for (j, b) in ids.iter().enumerate() {
            assert!(
                i == j || !is_prefix(a, b),
                "{what}: {a} is {} {b}",
                if a == b { "the same as" } else { "a prefix of" }
            );
        }
    }
}

fn with_component(segments: &[&str]) -> ManifestSpec {
    ManifestSpec {
        component_id: ComponentId::from_strs(segments),
        ..spec("x", 1, b"payload")
    }
}

#[test]
fn no_generated_component_id_is_a_prefix_of_another() {
    let tee = PrivateKey::generate(Curve::P256).unwrap();
    let dependency = builder::build(&spec("lib", 1, b"library"), &PROVIDER)
        .unwrap()
        .envelope;
    let shapes: [&[&str]; 7] = [
        &["TEEP-Device", "SecureFS", "app", "ta"],
        &["TEEP-Device", "SecureFS", "config.json"],
        &["TEEP-Device", "SecureFS", "x.suit"],
        &["TEEP-Device", "suit"],
        &["app"],
        &["config.json"],
        &[".hidden"],
    ];
    for segments in shapes {
        for encrypted in [false, true] {
            for depends in [false, true] {
                let mut s = with_component(segments);
                if encrypted {
                    s.encrypt_to = Some(tee.public_key().clone());
                    s.location = PayloadLocation::Uri("https://tam.example/x".into());
                }
                if depends {
                    s.dependencies = vec![DependencySpec {
                        envelope: dependency.clone(),
                    }];
                }
                let built = builder::build(&s, &PROVIDER).unwrap();
                let ids = stored_ids(&built.envelope);
                assert_eq!(
                    ids.len(),
                    2 + usize::from(encrypted) + usize::from(depends),
                    "{segments:?}"
                );
                assert_no_prefix(&format!("{segments:?} enc={encrypted}"), &ids);
            }
        }
    }
}

#[test]
fn an_encrypted_payload_is_staged_beside_its_component() {
    let tee = PrivateKey::generate(Curve::P256).unwrap();
    let mut s = with_component(&["TEEP-Device", "SecureFS", "config.json"]);
    s.encrypt_to = Some(tee.public_key().clone());
    let built = builder::build(&s, &PROVIDER).unwrap();
    let env = Envelope::decode(&built.envelope).unwrap();
    let manifest = Manifest::decode(env.manifest_bytes).unwrap();
    assert_eq!(
        manifest.common.components,
        [
            ComponentId::from_strs(&["TEEP-Device", "SecureFS", "config.json"]),
            ComponentId::from_strs(&["TEEP-Device", "SecureFS", "config.json.encrypted"]),
        ]
    );
    assert_eq!(
        manifest.manifest_component_id,
        Some(ComponentId::from_strs(&[
            "TEEP-Device",
            "SecureFS",
            "config.json.suit"
        ]))
    );
}

#[test]
fn default_manifest_ids_sit_beside_the_component() {
    let cases: [(&[&str], &[&str]); 10] = [
        (&["D", "S", "app", "ta"], &["D", "S", "app", "suit"]),
        // A TA's personalization data without an extension: not the TA's `suit`.
        (
            &["D", "S", "app", "greeting"],
            &["D", "S", "app", "greeting.suit"],
        ),
        (&["D", "S", "config.json"], &["D", "S", "config.json.suit"]),
        // Two files that differ only in their extension: two manifests.
        (&["D", "S", "config.bin"], &["D", "S", "config.bin.suit"]),
        (&["D", "S", "config"], &["D", "S", "config.suit"]),
        (&["ta"], &["ta.suit"]),
        (&["D", "S", "x.suit"], &["D", "S", "x.suit.suit"]),
        (&["D", "suit"], &["D", "suit.suit"]),
        (&["app"], &["app.suit"]),
        (&[".hidden"], &[".hidden.suit"]),
    ];
    for (component, manifest) in cases {
        assert_eq!(
            builder::manifest_id_for(&ComponentId::from_strs(component)),
            ComponentId::from_strs(manifest),
            "{component:?}"
        );
    }
}

#[test]
fn default_manifest_ids_are_one_per_component() {
    let names = [
        "ta",
        "suit",
        "greeting",
        "config",
        "config.json",
        "config.bin",
        "config.suit",
        "config.json.suit",
        "x.suit",
        "x.suit.suit",
        "",
        ".suit",
        "ta.suit",
        "a.b.c",
    ];
    let mut components: Vec<ComponentId> = names
        .iter()
        .flat_map(|n| {
            [
                ComponentId::from_strs(&[n]),
                ComponentId::from_strs(&["D", "S", "app", n]),
            ]
        })
        .collect();
    components.push(ComponentId(vec![]));
    let manifests: std::collections::BTreeSet<ComponentId> =
        components.iter().map(builder::manifest_id_for).collect();
    assert_eq!(manifests.len(), components.len(), "{manifests:?}");
    for (c, m) in components
        .iter()
        .zip(components.iter().map(builder::manifest_id_for))
    {
        assert_ne!(*c, m, "a manifest ID is never its component's");
    }
}
