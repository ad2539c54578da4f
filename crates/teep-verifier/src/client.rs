//! The relying party's client of the Verifier API: an [`Appraiser`].

use reqwest::{
    Response, StatusCode,
    header::{self, HeaderValue},
};
use teep_attest::{EVIDENCE_FORMAT, appraiser::Appraiser, appraiser::Challenge};

use crate::MAX_EVIDENCE;

/// Why the client could not get an answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// Transport failure (also a timeout of the caller's `reqwest::Client`).
    #[error("HTTP request failed: {0}")]
    Http(#[from] reqwest::Error),
    /// The token is not usable in an HTTP header.
    #[error("the relying-party token is not a valid header value")]
    BadToken,
    /// The Verifier does not know our token (`401`).
    #[error("the Verifier refused our token")]
    Unauthorized,
    /// Over our rate (`429`); `retry_after` seconds when the Verifier said.
    #[error("rate limited by the Verifier")]
    RateLimited {
        /// `Retry-After`, in seconds.
        retry_after: Option<u64>,
    },
    /// The Verifier answered with another error status.
    #[error("Verifier answered {0}")]
    Status(u16),
    /// The answer is not what the API documents (or larger than [`MAX_EVIDENCE`]).
    #[error("unexpected answer from the Verifier")]
    BadAnswer,
}

/// A relying party's client of the Verifier API.
///
/// The caller builds the `reqwest::Client`, and so chooses timeouts and TLS (roots, client
/// certificate); https needs a TLS feature of reqwest enabled in the caller's build. The
/// token's header value is marked sensitive, so `Debug` does not show it.
#[derive(Clone, Debug)]
pub struct Client {
    base: String,
    authorization: HeaderValue,
    http: reqwest::Client,
}

impl Client {
    /// A client for the Verifier at `base` (e.g. `http://127.0.0.1:8400`), authenticating
    /// with the relying party's `token`, sending through `http`.
    pub fn new(
        base: impl Into<String>,
        token: &str,
        http: reqwest::Client,
    ) -> Result<Self, ClientError> {
        let mut authorization =
            HeaderValue::try_from(format!("Bearer {token}")).map_err(|_| ClientError::BadToken)?;
        authorization.set_sensitive(true);
        Ok(Self {
            base: base.into().trim_end_matches('/').to_owned(),
            authorization,
            http,
        })
    }

    async fn post(&self, path: &str, body: Option<Vec<u8>>) -> Result<Vec<u8>, ClientError> {
        let mut request = self
            .http
            .post(format!("{}/{path}", self.base))
            .header(header::AUTHORIZATION, self.authorization.clone());
        if let Some(body) = body {
            request = request
                .header(header::CONTENT_TYPE, EVIDENCE_FORMAT)
                .body(body);
        }
        let resp = request.send().await?;
        match resp.status() {
            s if s.is_success() => read_limited(resp).await,
            StatusCode::UNAUTHORIZED => Err(ClientError::Unauthorized),
            StatusCode::TOO_MANY_REQUESTS => Err(ClientError::RateLimited {
                retry_after: resp
                    .headers()
                    .get(header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse().ok()),
            }),
            s => Err(ClientError::Status(s.as_u16())),
        }
    }
}

/// The body, refusing more than [`MAX_EVIDENCE`] bytes: an EAR or a challenge is far
/// smaller, and a Verifier (or whoever sits on the path) must not fill our memory.
async fn read_limited(mut resp: Response) -> Result<Vec<u8>, ClientError> {
    if resp
        .content_length()
        .is_some_and(|n| n > MAX_EVIDENCE as u64)
    {
        return Err(ClientError::BadAnswer);
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        if body.len() + chunk.len() > MAX_EVIDENCE {
            return Err(ClientError::BadAnswer);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Reads the `/challenge` answer; the nonce must fit `eat_nonce` (8 to 64 bytes).
fn parse_challenge(body: &[u8]) -> Result<Challenge, ClientError> {
    let body: serde_json::Value =
        serde_json::from_slice(body).map_err(|_| ClientError::BadAnswer)?;
    let nonce = body
        .get("nonce")
        .and_then(serde_json::Value::as_str)
        .and_then(|h| hex::decode(h).ok())
        .filter(|n| (8..=64).contains(&n.len()))
        .ok_or(ClientError::BadAnswer)?;
    let expires_in = body
        .get("expires_in")
        .and_then(serde_json::Value::as_u64)
        .ok_or(ClientError::BadAnswer)?;
    Ok(Challenge { nonce, expires_in })
}

impl Appraiser for Client {
    type Error = ClientError;

    /// `POST /challenge`; `now` is unused, the Verifier keeps its own clock.
    async fn challenge(&self, _now: u64) -> Result<Challenge, ClientError> {
        parse_challenge(&self.post("challenge", None).await?)
    }

    /// `POST /verify`; returns the signed EAR as the Verifier sent it.
    async fn appraise(&self, evidence: &[u8], _now: u64) -> Result<Vec<u8>, ClientError> {
        self.post("verify", Some(evidence.to_vec())).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_answers_are_checked() {
        let ok = parse_challenge(br#"{"nonce": "0001020304050607", "expires_in": 300}"#).unwrap();
        assert_eq!(ok.nonce, [0, 1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(ok.expires_in, 300);
        for bad in [
            &br#"{"nonce": "00010203040506", "expires_in": 300}"#[..],
            format!(r#"{{"nonce": "{}", "expires_in": 300}}"#, "00".repeat(65)).as_bytes(),
            br#"{"nonce": "zz", "expires_in": 300}"#,
            br#"{"nonce": "0001020304050607"}"#,
            br#"{"nonce": "0001020304050607", "expires_in": -1}"#,
            b"not json",
        ] {
            assert!(
                matches!(parse_challenge(bad), Err(ClientError::BadAnswer)),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn the_token_is_not_in_debug_output() {
        let c = Client::new("http://x/", "s3cr3t-token", reqwest::Client::new()).unwrap();
        assert!(!format!("{c:?}").contains("s3cr3t"));
        assert!(matches!(
            Client::new("http://x", "bad\ntoken", reqwest::Client::new()),
            Err(ClientError::BadToken)
        ));
    }
}
