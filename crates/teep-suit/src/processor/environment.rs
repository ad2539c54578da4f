//! What the processor is given: the device's fetcher, decryptor and clock (all `Send +
//! Sync`, so a role can share them with a processor running in a blocking task), the
//! device identity and the policy limits.

use alloc::string::String;
use alloc::vec::Vec;

use teep_cose::CryptoProvider;
use teep_cose::encrypt::{DecryptionKey, SUIT_PAYLOAD_ENCRYPTION};

use crate::command::VendorId;
use crate::error::SuitError;
use crate::model::ComponentId;

/// Resolves a URI to bytes (integrated payloads never reach it).
pub trait Fetcher: Send + Sync {
    /// The bytes at `uri`, or the reason it could not be fetched (for the report).
    fn fetch(&self, uri: &str) -> Result<Vec<u8>, String>;
}

/// A fetcher for devices without a network: every URI fails.
pub struct NoFetcher;

impl Fetcher for NoFetcher {
    fn fetch(&self, _uri: &str) -> Result<Vec<u8>, String> {
        Err("no fetcher configured".into())
    }
}

/// Decrypts content protected by a `SUIT_Encryption_Info`.
pub trait Decryptor: Send + Sync {
    /// Plaintext of `ciphertext` under `encryption_info` (the encoded `SUIT_Encryption_Info`).
    fn decrypt(&self, encryption_info: &[u8], ciphertext: &[u8]) -> Result<Vec<u8>, SuitError>;
}

/// Decryption with the device's keys through a crypto provider (ECDH-ES+A128KW, A128KW).
pub struct KeyDecryptor<'a> {
    /// Crypto for key unwrapping and content decryption.
    pub provider: &'a dyn CryptoProvider,
    /// The device's decryption keys, tried in turn.
    pub keys: Vec<DecryptionKey>,
}

impl Decryptor for KeyDecryptor<'_> {
    fn decrypt(&self, encryption_info: &[u8], ciphertext: &[u8]) -> Result<Vec<u8>, SuitError> {
        teep_cose::encrypt::decrypt(
            self.provider,
            encryption_info,
            Some(ciphertext),
            &self.keys,
            SUIT_PAYLOAD_ENCRYPTION,
        )
        .map(|p| p.to_vec())
        .map_err(SuitError::Decryption)
    }
}

/// Current time for certificate checks.
pub trait Clock: Send + Sync {
    /// Unix seconds, or `None` when the device has no trusted time.
    fn now(&self) -> Option<u64>;
}

/// A clock that knows no time (raw-key trust anchors do not need one).
pub struct NoClock;

impl Clock for NoClock {
    fn now(&self) -> Option<u64> {
        None
    }
}

/// What the device asserts about itself for the identifier conditions.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeviceIdentity {
    /// Vendor identifiers that `suit-condition-vendor-identifier` accepts.
    pub vendor_ids: Vec<VendorId>,
    /// Class UUIDs that `suit-condition-class-identifier` accepts.
    pub class_ids: Vec<Vec<u8>>,
    /// Device UUIDs that `suit-condition-device-identifier` accepts.
    pub device_ids: Vec<Vec<u8>>,
    /// Slot of each component (A/B images), for condition-component-slot.
    pub slots: Vec<(ComponentId, u64)>,
}

/// Processor limits and policy switches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Refuse manifests whose shared sequence lacks vendor- and class-identifier checks
    /// (the core spec's SHOULD; several published vectors have none, so it is a switch).
    pub require_compatibility_check: bool,
    /// Most components (and dependencies) a manifest may declare.
    pub max_components: usize,
    /// Nesting limit over try-each, run-sequence and dependencies.
    pub max_depth: usize,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            require_compatibility_check: false,
            max_components: 64,
            max_depth: 16,
        }
    }
}
