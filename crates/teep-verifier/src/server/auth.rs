//! Relying parties and their bearer tokens.
//!
//! The tokens file has one relying party per line, `NAME TOKEN`; blank lines and lines
//! starting with `#` are ignored. Only SHA-256 digests of the tokens are kept, and a
//! presented token is compared with every digest in constant time, so neither the time of
//! an answer nor a log line tells anything about a token.

use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;
use teep_cose::{CoseError, CryptoProvider};

/// Shortest token accepted: guessing one must be out of reach however fast the attacker.
const MIN_TOKEN_LEN: usize = 32;

/// Why a tokens file was refused. Never carries token text: line numbers only.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokensError {
    /// A line is not `NAME TOKEN`.
    #[error("line {0}: expected `NAME TOKEN`")]
    Syntax(usize),
    /// A name with other characters than letters, digits, `.`, `_`, `-`.
    #[error("line {0}: relying-party names are letters, digits, `.`, `_` and `-`")]
    BadName(usize),
    /// A token shorter than 32 characters or outside the RFC 6750 `b64token` alphabet.
    #[error("line {0}: a token is at least 32 characters of A-Z a-z 0-9 - . _ ~ + / =")]
    BadToken(usize),
    /// The name was already given on an earlier line.
    #[error("line {0}: relying party named twice")]
    DuplicateName(usize),
    /// The token was already given to another relying party (it would not tell them apart).
    #[error("line {0}: token already used by another relying party")]
    DuplicateToken(usize),
    /// No relying party at all: nobody could use the Verifier.
    #[error("no relying party in the tokens file")]
    Empty,
}

struct Party {
    name: String,
    digest: [u8; 32],
}

/// The relying parties allowed to use the Verifier.
pub struct RelyingParties {
    parties: Vec<Party>,
}

impl core::fmt::Debug for RelyingParties {
    /// Names only: the digests are not for logs either.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list()
            .entries(self.parties.iter().map(|p| &p.name))
            .finish()
    }
}

fn digest(token: &[u8]) -> [u8; 32] {
    Sha256::digest(token).into()
}

fn is_b64token(t: &str) -> bool {
    let body = t.trim_end_matches('=');
    !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
}

impl RelyingParties {
    /// Reads a tokens file.
    pub fn parse(text: &str) -> Result<Self, TokensError> {
        let mut parties: Vec<Party> = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let n = i + 1;
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut fields = line.split_whitespace();
            let (Some(name), Some(token), None) = (fields.next(), fields.next(), fields.next())
            else {
                return Err(TokensError::Syntax(n));
            };
            if !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
            {
                return Err(TokensError::BadName(n));
            }
            if token.len() < MIN_TOKEN_LEN || !is_b64token(token) {
                return Err(TokensError::BadToken(n));
            }
            let digest = digest(token.as_bytes());
            if parties.iter().any(|p| p.name == name) {
                return Err(TokensError::DuplicateName(n));
            }
            if parties.iter().any(|p| p.digest == digest) {
                return Err(TokensError::DuplicateToken(n));
            }
            parties.push(Party {
                name: name.to_owned(),
                digest,
            });
        }
        if parties.is_empty() {
            return Err(TokensError::Empty);
        }
        Ok(Self { parties })
    }

    /// How many relying parties there are; [`Self::authenticate`] answers indexes below it.
    pub(crate) fn len(&self) -> usize {
        self.parties.len()
    }

    /// The name of relying party `index` (for logs).
    pub(crate) fn name(&self, index: usize) -> &str {
        self.parties.get(index).map_or("", |p| &p.name)
    }

    /// Which relying party holds `token`. Every digest is compared, in constant time.
    pub(crate) fn authenticate(&self, token: &[u8]) -> Option<usize> {
        let presented = digest(token);
        let mut found = None;
        for (i, p) in self.parties.iter().enumerate() {
            if bool::from(p.digest.ct_eq(&presented)) {
                found = Some(i);
            }
        }
        found
    }
}

/// The contents of a new tokens file for one relying party, `default`, with a random
/// 256-bit token (what `teep verifier serve` writes on first start).
pub fn new_tokens_file(provider: &dyn CryptoProvider) -> Result<String, CoseError> {
    let mut token = [0u8; 32];
    provider.fill_random(&mut token)?;
    Ok(format!(
        "# Relying parties of the teep Verifier: NAME TOKEN, one per line.\n\
         # A relying party sends `Authorization: Bearer TOKEN`. Keep this file secret.\n\
         default {}\n",
        hex::encode(token)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "0123456789abcdef0123456789abcdef";
    const B: &str = "fedcba9876543210fedcba9876543210";

    #[test]
    fn tokens_file_names_each_party() {
        let rp =
            RelyingParties::parse(&format!("# tams\n\ntam-1 {A}\n  tam.2\t{B}==  \n")).unwrap();
        assert_eq!(rp.len(), 2);
        assert_eq!(rp.authenticate(A.as_bytes()), Some(0));
        assert_eq!(rp.name(0), "tam-1");
        assert_eq!(rp.authenticate(format!("{B}==").as_bytes()), Some(1));
        assert_eq!(rp.authenticate(B.as_bytes()), None);
        assert_eq!(rp.authenticate(b""), None);
        assert_eq!(format!("{rp:?}"), r#"["tam-1", "tam.2"]"#);
    }

    #[test]
    fn bad_tokens_files_are_refused_without_echoing_the_token() {
        let cases = [
            (format!("tam {A} extra"), TokensError::Syntax(1)),
            (A.to_owned(), TokensError::Syntax(1)),
            (format!("t\u{e4}m {A}"), TokensError::BadName(1)),
            (
                "tam 0123456789abcdef0123456789abcde".to_owned(),
                TokensError::BadToken(1),
            ),
            (format!("tam {A}\"x"), TokensError::BadToken(1)),
            (format!("tam ={A}"), TokensError::BadToken(1)),
            (format!("tam {A}\ntam {B}"), TokensError::DuplicateName(2)),
            (format!("a {A}\nb {A}"), TokensError::DuplicateToken(2)),
            ("# nobody\n".to_owned(), TokensError::Empty),
        ];
        for (text, want) in cases {
            let err = RelyingParties::parse(&text).unwrap_err();
            assert_eq!(err, want, "{text:?}");
            assert!(!err.to_string().contains(A), "{err}");
        }
    }

    #[test]
    fn a_generated_file_parses_and_its_token_is_random() {
        let provider = teep_cose::default_provider();
        let (a, b) = (
            new_tokens_file(provider).unwrap(),
            new_tokens_file(provider).unwrap(),
        );
        assert_ne!(a, b);
        let rp = RelyingParties::parse(&a).unwrap();
        let token = a.lines().last().unwrap().strip_prefix("default ").unwrap();
        assert_eq!(token.len(), 64);
        assert_eq!(rp.authenticate(token.as_bytes()), Some(0));
    }
}
