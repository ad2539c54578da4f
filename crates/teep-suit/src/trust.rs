//! TC-signer trust anchors with constraints (RFC 9397 §5): each anchor names the
//! component-ID prefixes its signers may install, update and delete (trust-domains
//! security considerations: a manifest-component-id must be a location its signer may
//! write). Storage remembers which anchor installed each manifest ([`SignerId`]), so an
//! installed TC is updated only through the anchor that installed it.
//!
//! * An anchor may hold several keys: they are one signer identity (key rotation, or one
//!   organisation's keys). A manifest installed under one of them may be updated with
//!   another; a different anchor may not take it over even where their scopes overlap.
//! * The unscoped construction ([`TrustAnchor::unscoped`], [`TrustAnchors::unscoped`]) is
//!   the scope of everything: the empty prefix, which every component ID starts with.
//! * COSE_Mac0 manifests are authenticated by device-provisioned symmetric keys; they form
//!   one identity ([`SignerId::Mac`]) with the scope of everything.
//! * Certificate-chain signers (CA anchors of a [`TrustStore`] given to
//!   [`TrustAnchors::unscoped`]) form one unscoped identity, [`X509_ANCHOR`]: teep-cose
//!   reports the verified leaf key, not the CA that certified it, so CA anchors cannot be
//!   scoped yet.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use teep_cose::{PublicKey, TrustStore};

use crate::model::ComponentId;

/// Name of the identity shared by all certificate-chain signers of an unscoped store.
pub const X509_ANCHOR: &str = "x509";

/// Who authenticated a manifest: what storage keeps to decide who may update it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SignerId {
    /// A trust anchor, by its name.
    Anchor(String),
    /// A device MAC key (COSE_Mac0).
    Mac,
}

/// One TC-signer trust anchor: its keys and the component-ID prefixes they may write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustAnchor {
    /// The identity stored with every manifest this anchor's keys install.
    pub name: String,
    pub keys: Vec<PublicKey>,
    /// Component-ID prefixes (segment-wise) the signer may install, update and delete;
    /// empty means nothing, the empty identifier means everything.
    pub scope: Vec<ComponentId>,
}

impl TrustAnchor {
    /// One key, trusted for every component; named by its RFC 9679 thumbprint (hex).
    pub fn unscoped(key: PublicKey) -> Self {
        Self::scoped(key, vec![ComponentId::default()])
    }

    /// One key, named by its thumbprint (hex), trusted for the components under `scope`.
    pub fn scoped(key: PublicKey, scope: Vec<ComponentId>) -> Self {
        Self {
            name: hex::encode(key.thumbprint()),
            keys: vec![key],
            scope,
        }
    }

    /// Whether the anchor's signers may write `id`.
    pub fn covers(&self, id: &ComponentId) -> bool {
        covers(&self.scope, id)
    }
}

/// Whether `id` starts with one of the prefixes.
pub(crate) fn covers(scope: &[ComponentId], id: &ComponentId) -> bool {
    scope.iter().any(|p| id.0.starts_with(&p.0))
}

/// The TC-signer anchors of a device: keys for verification plus their scopes.
#[derive(Clone, Debug, Default)]
pub struct TrustAnchors {
    store: TrustStore,
    anchors: Vec<TrustAnchor>,
    /// Scope of certificate-chain signers (only the unscoped construction has CAs).
    certified: Vec<ComponentId>,
}

impl TrustAnchors {
    /// No anchors: every signed manifest is refused.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an anchor; a key already held by an earlier anchor keeps that identity.
    pub fn add(&mut self, anchor: TrustAnchor) {
        for k in &anchor.keys {
            self.store.add_key(k.clone());
        }
        self.anchors.push(anchor);
    }

    /// Every raw key of `store` as its own unscoped anchor, and its CA anchors as one
    /// unscoped identity ([`X509_ANCHOR`]): the construction before scopes existed.
    pub fn unscoped(store: TrustStore) -> Self {
        let anchors = store
            .keys()
            .iter()
            .cloned()
            .map(TrustAnchor::unscoped)
            .collect();
        Self {
            store,
            anchors,
            certified: vec![ComponentId::default()],
        }
    }

    /// The keys (and CAs) signatures are verified against.
    pub fn store(&self) -> &TrustStore {
        &self.store
    }

    pub fn anchors(&self) -> &[TrustAnchor] {
        &self.anchors
    }

    /// The identity and scope of a key that verified a signature.
    pub(crate) fn identify(&self, key: &PublicKey) -> (SignerId, &[ComponentId]) {
        match self.anchors.iter().find(|a| a.keys.contains(key)) {
            Some(a) => (SignerId::Anchor(a.name.clone()), &a.scope),
            None => (SignerId::Anchor(X509_ANCHOR.into()), &self.certified),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_match_whole_segments() {
        let scope = [ComponentId::from_strs(&["TEEP-Device", "SecureFS", "app"])];
        let under = |s: &[&str]| covers(&scope, &ComponentId::from_strs(s));
        assert!(under(&["TEEP-Device", "SecureFS", "app"]));
        assert!(under(&["TEEP-Device", "SecureFS", "app", "ta"]));
        // A longer segment is another component, not one under the prefix.
        assert!(!under(&["TEEP-Device", "SecureFS", "apple", "ta"]));
        assert!(!under(&["TEEP-Device", "SecureFS"]));
        assert!(!covers(&[], &ComponentId::from_strs(&["x"])));
        // The empty identifier is the scope of everything.
        assert!(covers(
            &[ComponentId::default()],
            &ComponentId::from_strs(&["x"])
        ));
    }
}
