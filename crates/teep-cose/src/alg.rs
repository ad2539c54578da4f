//! COSE signature algorithms and the curves they run on.

/// COSE signature algorithms this library signs and verifies with.
///
/// TEEP (-26) names ESP256 (-9) and Ed25519 (-19); older peers still send the deprecated
/// polymorphic ES256 (-7) and EdDSA (-8). We accept both spellings (interop over strictness,
/// TEEP digest ambiguity 13): ES256 is the same operation as ESP256, EdDSA is only ever
/// Ed25519 here because no Ed448 keys exist in this library.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// ECDSA P-256 with SHA-256 (fully specified, RFC 9864), COSE -9.
    Esp256,
    /// EdDSA with Ed25519 (fully specified, RFC 9864), COSE -19.
    Ed25519,
    /// ECDSA with SHA-256 (deprecated polymorphic id), COSE -7; P-256 keys only.
    Es256,
    /// EdDSA (deprecated polymorphic id), COSE -8; Ed25519 keys only.
    EdDsa,
    /// ECDSA P-384 with SHA-384, COSE -35.
    Es384,
}

impl Algorithm {
    /// The COSE algorithm identifier.
    pub const fn cose_id(self) -> i64 {
        match self {
            Self::Esp256 => -9,
            Self::Ed25519 => -19,
            Self::Es256 => -7,
            Self::EdDsa => -8,
            Self::Es384 => -35,
        }
    }

    /// The algorithm for a COSE identifier, if supported.
    pub fn from_cose_id(id: i64) -> Option<Self> {
        match id {
            -9 => Some(Self::Esp256),
            -19 => Some(Self::Ed25519),
            -7 => Some(Self::Es256),
            -8 => Some(Self::EdDsa),
            -35 => Some(Self::Es384),
            _ => None,
        }
    }

    /// The fully specified id of the same operation: ES256 is ESP256 and EdDSA is Ed25519
    /// here (see the type doc), so a key restricted to one may be used under the other.
    pub(crate) const fn fully_specified(self) -> Self {
        match self {
            Self::Es256 => Self::Esp256,
            Self::EdDsa => Self::Ed25519,
            other => other,
        }
    }

    /// The only curve a key for this algorithm may be on.
    pub const fn curve(self) -> Curve {
        match self {
            Self::Esp256 | Self::Es256 => Curve::P256,
            Self::Ed25519 | Self::EdDsa => Curve::Ed25519,
            Self::Es384 => Curve::P384,
        }
    }

    /// Length of the raw signature (r||s for ECDSA) in bytes.
    pub const fn signature_len(self) -> usize {
        match self {
            Self::Esp256 | Self::Es256 | Self::Ed25519 | Self::EdDsa => 64,
            Self::Es384 => 96,
        }
    }
}

/// Curves of the keys this library handles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Curve {
    /// NIST P-256 (COSE EC2 crv 1).
    P256,
    /// NIST P-384 (COSE EC2 crv 2).
    P384,
    /// Ed25519 (COSE OKP crv 6).
    Ed25519,
}

impl Curve {
    /// The COSE `crv` value.
    pub const fn cose_crv(self) -> i64 {
        match self {
            Self::P256 => 1,
            Self::P384 => 2,
            Self::Ed25519 => 6,
        }
    }

    /// Byte length of one coordinate (EC2) or of the key (OKP), and of the private scalar.
    pub const fn field_len(self) -> usize {
        match self {
            Self::P256 | Self::Ed25519 => 32,
            Self::P384 => 48,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_fit_their_curves() {
        for alg in [
            Algorithm::Esp256,
            Algorithm::Ed25519,
            Algorithm::Es256,
            Algorithm::EdDsa,
            Algorithm::Es384,
        ] {
            assert_eq!(Algorithm::from_cose_id(alg.cose_id()), Some(alg));
        }
        assert_eq!(Algorithm::Es256.curve(), Curve::P256);
        assert_eq!(Algorithm::EdDsa.curve(), Curve::Ed25519);
        assert_eq!(Algorithm::from_cose_id(-36), None, "ES512 is not supported");
    }
}
