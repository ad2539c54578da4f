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
//! * An anchor may also hold CA certificates ([`TrustAnchor::ca`]): every `x5chain` leaf
//!   that verifies to one of them signs as that anchor, with its scope. The identity is the
//!   CA anchor teep-cose reports the chain verified to ([`teep_cose::Verified::ca`]), never
//!   the leaf key, so leaves of different CAs are different signers and a leaf of one CA
//!   cannot write under another CA's prefixes nor update its TCs.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use teep_cose::{CaCertificate, PublicKey, TrustStore};

use crate::model::ComponentId;

/// Who authenticated a manifest: what storage keeps to decide who may update it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SignerId {
    /// A trust anchor, by its name.
    Anchor(String),
    /// A device MAC key (COSE_Mac0).
    Mac,
}

/// One TC-signer trust anchor: its keys and CAs, and the component-ID prefixes their
/// signers may write.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustAnchor {
    /// The identity stored with every manifest this anchor's signers install.
    pub name: String,
    /// Raw keys that sign as this anchor.
    pub keys: Vec<PublicKey>,
    /// CA certificates: a certificate-chain signer that verifies to one signs as this anchor.
    pub cas: Vec<CaCertificate>,
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
            cas: Vec::new(),
            scope,
        }
    }

    /// One CA, named by its certificate's SHA-256 (hex): the leaves it certifies may write
    /// the components under `scope`.
    pub fn ca(ca: CaCertificate, scope: Vec<ComponentId>) -> Self {
        Self {
            name: hex::encode(ca.fingerprint()),
            keys: Vec::new(),
            cas: vec![ca],
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
}

impl TrustAnchors {
    /// No anchors: every signed manifest is refused.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an anchor; a key or CA already held by an earlier anchor keeps that identity.
    pub fn add(&mut self, anchor: TrustAnchor) {
        for k in &anchor.keys {
            self.store.add_key(k.clone());
        }
        for ca in &anchor.cas {
            self.store.add_ca(ca.clone());
        }
        self.anchors.push(anchor);
    }

    /// Every raw key and every CA of `store` as its own unscoped anchor: the construction
    /// before scopes existed.
    pub fn unscoped(store: TrustStore) -> Self {
        let keys = store.keys().iter().cloned().map(TrustAnchor::unscoped);
        let cas = store
            .cas()
            .iter()
            .map(|ca| TrustAnchor::ca(ca.clone(), vec![ComponentId::default()]));
        let anchors = keys.chain(cas).collect();
        Self { store, anchors }
    }

    /// The keys (and CAs) signatures are verified against.
    pub fn store(&self) -> &TrustStore {
        &self.store
    }

    /// The anchors with their scopes, in the order they were added.
    pub fn anchors(&self) -> &[TrustAnchor] {
        &self.anchors
    }

    /// The identity and scope of the signer that verified a signature: the anchor holding
    /// the CA its chain verified to, else the anchor holding the raw key. The leaf key of a
    /// chain is never looked up among raw keys (a CA may certify any key it likes). A signer
    /// of no anchor (not reachable: the store holds only anchors' keys and CAs) gets the
    /// empty scope, so it writes nothing.
    pub(crate) fn identify(
        &self,
        key: &PublicKey,
        ca: Option<&CaCertificate>,
    ) -> (SignerId, &[ComponentId]) {
        let anchor = match ca {
            Some(ca) => self.anchors.iter().find(|a| a.cas.contains(ca)),
            None => self.anchors.iter().find(|a| a.keys.contains(key)),
        };
        match anchor {
            Some(a) => (SignerId::Anchor(a.name.clone()), &a.scope),
            None => (SignerId::Anchor(String::new()), &[]),
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
