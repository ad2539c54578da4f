//! The TEEP/HTTP client (draft-ietf-teep-otrp-over-http-15 §5): one POST per step,
//! with the checks the draft asks of a client and the limits it leaves to us.

use std::net::IpAddr;
use std::time::Duration;

use reqwest::header::{ACCEPT, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use reqwest::{Client, StatusCode, Url, redirect};
use tracing::{error, info, warn};

/// The media type of TEEP messages.
pub const TEEP_MEDIA_TYPE: &str = "application/teep+cbor";

/// The media type older TAMs (pre-26 drafts) label their answers with; accepted only with
/// [`HttpConfig::accept_teep_cose`]. What the body is does not depend on the label: it is
/// a signed TEEP message either way, and the Agent verifies it.
pub const OLD_TEEP_MEDIA_TYPE: &str = "application/teep+cose";

/// The `Accept` header sent when [`HttpConfig::accept_teep_cose`] is set.
const ACCEPT_BOTH: &str = "application/teep+cbor, application/teep+cose;q=0.9";

/// Default response size limit: an Update carrying a 1 MiB TC, with room to spare.
pub const DEFAULT_MAX_RESPONSE: usize = 8 * 1024 * 1024;

/// When plain `http://` TAM URIs are accepted. HTTPS is always accepted, with the server
/// authenticated against the platform's roots plus [`HttpConfig::extra_roots_der`].
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
#[non_exhaustive]
pub enum PlainHttp {
    /// Only `https://` (the default: TEEP/HTTP §6 "plain HTTP only by explicit configuration").
    #[default]
    Refuse,
    /// `http://` only to a loopback IP literal (`127.0.0.0/8`, `[::1]`), for a TAM on the
    /// same host. A host *name* such as `localhost` is not trusted to resolve to loopback.
    Loopback,
    /// Any `http://` URI (constrained networks relying on TEEP's end-to-end signatures).
    Allow,
}

/// Transport settings.
#[derive(Clone, Debug)]
pub struct HttpConfig {
    /// Time allowed to open the TCP (and TLS) connection.
    pub connect_timeout: Duration,
    /// Time allowed for one whole POST, response body included.
    pub request_timeout: Duration,
    /// Largest response body accepted.
    pub max_response: usize,
    /// Retries after the first attempt, on retryable network errors (see [`TransportError::is_retryable`]).
    pub retries: u32,
    /// Wait before the first retry; doubled on each further retry up to `backoff_max`.
    pub backoff_initial: Duration,
    /// Longest wait between two retries.
    pub backoff_max: Duration,
    /// Whether `http://` TAM URIs are accepted.
    pub plain_http: PlainHttp,
    /// Trust anchors (DER certificates) added to the platform's roots, e.g. a private TAM CA.
    pub extra_roots_der: Vec<Vec<u8>>,
    /// Also accept answers labelled [`OLD_TEEP_MEDIA_TYPE`] (and ask for them in `Accept`):
    /// set for an Agent configured for pre-26 TAMs only, so a -26 TAM's answers keep the
    /// one media type the -26 HTTP binding defines.
    pub accept_teep_cose: bool,
    /// Write every body sent and received to this capture (`teep device run --capture`).
    pub capture: Option<crate::Capture>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            max_response: DEFAULT_MAX_RESPONSE,
            retries: 3,
            backoff_initial: Duration::from_millis(500),
            backoff_max: Duration::from_secs(8),
            plain_http: PlainHttp::Refuse,
            extra_roots_der: Vec::new(),
            accept_teep_cose: false,
            capture: None,
        }
    }
}

/// Why a message could not be delivered or its answer not accepted; the Broker passes it
/// to the Agent's ProcessError (serializable: it crosses the IPC socket to the TEE).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TransportError {
    /// The TAM URI does not parse, has another scheme, or carries credentials.
    #[error("invalid TAM URI: {0}")]
    InvalidUri(String),
    /// An `http://` URI that the configuration ([`PlainHttp`]) does not allow.
    #[error("plain http refused for this TAM URI")]
    PlainHttpRefused,
    /// No connection (refused, unreachable, DNS): the request was not delivered.
    #[error("cannot connect: {0}")]
    Connect(String),
    /// The TLS handshake failed, most often because the TAM's certificate is not trusted
    /// (unknown issuer, wrong name, expired): the request was not delivered, and trying
    /// again cannot help, so it is never retried.
    #[error("TLS handshake failed (TAM certificate not trusted?): {0}")]
    Tls(String),
    /// The POST did not complete within [`HttpConfig::request_timeout`].
    #[error("timed out")]
    Timeout,
    /// The connection failed after the request may have been delivered.
    #[error("network error: {0}")]
    Network(String),
    /// A 3xx answer: redirects are never followed (TEEP/HTTP §2).
    #[error("redirect {status} not followed")]
    Redirect {
        /// The HTTP status.
        status: u16,
    },
    /// A 4xx or 5xx answer (or another non-2xx status).
    #[error("HTTP status {status}")]
    Status {
        /// The HTTP status.
        status: u16,
    },
    /// A non-empty answer without `Content-Type: application/teep+cbor`.
    #[error("wrong media type {0:?}")]
    MediaType(Option<String>),
    /// The answer is larger than [`HttpConfig::max_response`].
    #[error("response larger than {limit} bytes")]
    TooLarge {
        /// The configured limit.
        limit: usize,
    },
    /// The TAM kept the exchange going beyond [`crate::BrokerConfig::max_messages_per_exchange`].
    #[error("exchange longer than {limit} messages")]
    ExchangeTooLong {
        /// The configured limit.
        limit: usize,
    },
}

impl TransportError {
    /// Whether a POST that failed this way is tried again. A failed connection never
    /// delivered the request, so it is retried for every POST. A timeout or broken
    /// connection may have delivered it: only the empty session-opening POST (which changes
    /// nothing at the TAM) is repeated; a lost reply to a message goes to the Agent instead.
    #[must_use]
    pub fn is_retryable(&self, empty_post: bool) -> bool {
        match self {
            Self::Connect(_) => true,
            Self::Timeout | Self::Network(_) => empty_post,
            _ => false,
        }
    }

    fn from_reqwest(e: &reqwest::Error) -> Self {
        // `Display` of a reqwest error names the URL and the cause, never the body.
        if e.is_connect() && is_tls(e) {
            Self::Tls(error_chain(e))
        } else if e.is_connect() {
            Self::Connect(error_chain(e))
        } else if e.is_timeout() {
            Self::Timeout
        } else {
            Self::Network(error_chain(e))
        }
    }
}

/// Whether a rustls error is among `e` and its sources. Each wrapping `io::Error` (tokio-rustls
/// and the connector wrap it, maybe twice) is looked into with `get_ref`, since its
/// `source()` skips the wrapped error.
fn is_tls(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(e);
    while let Some(cur) = next {
        if cur.is::<rustls::Error>() {
            return true;
        }
        next = match cur
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
        {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => cur.source(),
        };
    }
    false
}

/// The error and its sources on one line (reqwest's top-level message alone says little).
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// The client could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// reqwest (TLS back end) refused the configuration, e.g. an entry of
    /// [`HttpConfig::extra_roots_der`] that is not a DER certificate.
    #[error("cannot build the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
}

/// The TEEP/HTTP client: no redirects, no cookies (reqwest's cookie store is not even
/// compiled in), no proxy from the environment, bounded time and size.
#[derive(Clone, Debug)]
pub(crate) struct TeepHttp {
    client: Client,
    cfg: HttpConfig,
}

impl TeepHttp {
    pub(crate) fn new(cfg: HttpConfig) -> Result<Self, BuildError> {
        // With rustls a bad certificate is only noticed by `build`, which fails then.
        let roots = cfg
            .extra_roots_der
            .iter()
            .map(|der| reqwest::Certificate::from_der(der))
            .collect::<Result<Vec<_>, _>>()
            .map_err(BuildError::Client)?;
        let client = Client::builder()
            .redirect(redirect::Policy::none())
            .referer(false)
            .no_proxy()
            .https_only(cfg.plain_http == PlainHttp::Refuse)
            .tls_certs_merge(roots)
            .connect_timeout(cfg.connect_timeout)
            .timeout(cfg.request_timeout)
            .user_agent(concat!("teep-broker/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(BuildError::Client)?;
        Ok(Self { client, cfg })
    }

    /// Accepts `https://`, and `http://` as [`PlainHttp`] allows; never credentials in the URI
    /// (reqwest would send them as Basic authentication).
    pub(crate) fn check_uri(&self, uri: &str) -> Result<Url, TransportError> {
        let url = Url::parse(uri).map_err(|e| TransportError::InvalidUri(e.to_string()))?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(TransportError::InvalidUri("credentials in the URI".into()));
        }
        match url.scheme() {
            "https" => Ok(url),
            "http" => {
                // The parser has already turned IP literals into their canonical form
                // (`[...]` around IPv6), so a host name never parses as an address here.
                let loopback = url
                    .host_str()
                    .map(|h| h.trim_start_matches('[').trim_end_matches(']'))
                    .and_then(|h| h.parse::<IpAddr>().ok())
                    .is_some_and(|ip| ip.is_loopback());
                match self.cfg.plain_http {
                    PlainHttp::Allow => Ok(url),
                    PlainHttp::Loopback if loopback => Ok(url),
                    _ => Err(TransportError::PlainHttpRefused),
                }
            }
            other => Err(TransportError::InvalidUri(format!("scheme {other}"))),
        }
    }

    /// POSTs `message` (an empty body when `None`) with retries; `Ok(None)` when the TAM
    /// answered with no content (the exchange is over).
    pub(crate) async fn post(
        &self,
        url: &Url,
        message: Option<&[u8]>,
    ) -> Result<Option<Vec<u8>>, TransportError> {
        let mut backoff = self.cfg.backoff_initial;
        let mut attempt = 0;
        loop {
            match self.post_once(url, message).await {
                Err(e) if attempt < self.cfg.retries && e.is_retryable(message.is_none()) => {
                    attempt += 1;
                    warn!(tam = %url, attempt, retry_in_ms = backoff.as_millis() as u64, error = %e, "teep/http retry");
                    tokio::time::sleep(backoff).await;
                    backoff = backoff.saturating_mul(2).min(self.cfg.backoff_max);
                }
                Err(e @ TransportError::Tls(_)) => {
                    error!(tam = %url, error = %e, "teep/http TLS handshake failed: the TAM's certificate was not trusted (or the TAM does not speak TLS); not retried");
                    return Err(e);
                }
                other => return other,
            }
        }
    }

    async fn post_once(
        &self,
        url: &Url,
        message: Option<&[u8]>,
    ) -> Result<Option<Vec<u8>>, TransportError> {
        let sent = message.map_or(0, <[u8]>::len);
        let mut request = self.client.post(url.clone()).header(
            ACCEPT,
            HeaderValue::from_static(if self.cfg.accept_teep_cose {
                ACCEPT_BOTH
            } else {
                TEEP_MEDIA_TYPE
            }),
        );
        request = match message {
            Some(body) => request
                .header(CONTENT_TYPE, HeaderValue::from_static(TEEP_MEDIA_TYPE))
                .body(body.to_vec()),
            // hyper omits the length of an empty body; RFC 9110 §8.6 wants it on a POST,
            // and the draft's sample shows it.
            None => request.header(CONTENT_LENGTH, HeaderValue::from_static("0")),
        };
        let capture = self.cfg.capture.as_ref();
        if let Some(c) = capture {
            let mut e = crate::capture::entry("to-tam", url.as_str());
            e.media_type = message.map(|_| TEEP_MEDIA_TYPE.to_owned());
            c.record(e, message.unwrap_or_default());
        }
        let result = self.send(request).await;
        if let Some(c) = capture {
            let mut e = crate::capture::entry("from-tam", url.as_str());
            match &result {
                Ok((status, body, media_type)) => {
                    e.status = Some(status.as_u16());
                    e.media_type.clone_from(media_type);
                    c.record(e, body.as_deref().unwrap_or_default());
                }
                Err(err) => {
                    if let TransportError::Redirect { status } | TransportError::Status { status } =
                        err
                    {
                        e.status = Some(*status);
                    }
                    e.error = Some(err.to_string());
                    c.record(e, &[]);
                }
            }
        }
        match &result {
            Ok((status, body, _)) => info!(
                tam = %url,
                sent,
                status = status.as_u16(),
                received = body.as_ref().map_or(0, Vec::len),
                "teep/http step"
            ),
            Err(e) => warn!(tam = %url, sent, error = %e, "teep/http step failed"),
        }
        result.map(|(_, body, _)| body)
    }

    async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<(StatusCode, Option<Vec<u8>>, Option<String>), TransportError> {
        let mut response = request
            .send()
            .await
            .map_err(|e| TransportError::from_reqwest(&e))?;
        let status = response.status();
        if status.is_redirection() {
            return Err(TransportError::Redirect {
                status: status.as_u16(),
            });
        }
        if !status.is_success() {
            return Err(TransportError::Status {
                status: status.as_u16(),
            });
        }
        let limit = self.cfg.max_response;
        if response
            .content_length()
            .is_some_and(|len| usize::try_from(len).map_or(true, |len| len > limit))
        {
            return Err(TransportError::TooLarge { limit });
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| TransportError::from_reqwest(&e))?
        {
            if chunk.len() > limit.saturating_sub(body.len()) {
                return Err(TransportError::TooLarge { limit });
            }
            body.extend_from_slice(&chunk);
        }
        if body.is_empty() {
            return Ok((status, None, None));
        }
        let content_type = response.headers().get(CONTENT_TYPE);
        let accepted = |v: &HeaderValue| {
            media_type_is(v, TEEP_MEDIA_TYPE)
                || (self.cfg.accept_teep_cose && media_type_is(v, OLD_TEEP_MEDIA_TYPE))
        };
        let media_type = content_type.map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        if !content_type.is_some_and(accepted) {
            return Err(TransportError::MediaType(media_type));
        }
        Ok((status, Some(body), media_type))
    }
}

/// `expected`, any case, optionally followed by parameters (`; ...`).
fn media_type_is(value: &HeaderValue, expected: &str) -> bool {
    let Ok(value) = value.to_str() else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or_default().trim();
    essence.eq_ignore_ascii_case(expected)
}

/// `application/teep+cbor`, any case, optionally followed by parameters (`; ...`).
#[cfg(test)]
fn is_teep_media_type(value: &HeaderValue) -> bool {
    media_type_is(value, TEEP_MEDIA_TYPE)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(plain_http: PlainHttp) -> TeepHttp {
        TeepHttp::new(HttpConfig {
            plain_http,
            ..HttpConfig::default()
        })
        .unwrap()
    }

    #[test]
    fn media_type_allows_parameters_and_case_only() {
        for ok in [
            "application/teep+cbor",
            "Application/TEEP+CBOR",
            "application/teep+cbor; charset=binary",
            " application/teep+cbor ;x=y",
        ] {
            assert!(is_teep_media_type(&HeaderValue::from_static(ok)), "{ok}");
        }
        for bad in [
            "application/cbor",
            "application/teep+cborx",
            "application/teep+cbor,text/html",
            "text/html; application/teep+cbor",
            "",
        ] {
            assert!(!is_teep_media_type(&HeaderValue::from_static(bad)), "{bad}");
        }
        let not_ascii = HeaderValue::from_bytes(b"application/teep+cbor\xff").unwrap();
        assert!(!is_teep_media_type(&not_ascii));
    }

    #[test]
    fn plain_http_needs_configuration() {
        let refuse = client(PlainHttp::Refuse);
        assert!(refuse.check_uri("https://tam.example/tam").is_ok());
        assert_eq!(
            refuse.check_uri("http://127.0.0.1:8080/tam"),
            Err(TransportError::PlainHttpRefused)
        );
        let loopback = client(PlainHttp::Loopback);
        assert!(loopback.check_uri("http://127.0.0.1:8080/tam").is_ok());
        assert!(loopback.check_uri("http://127.9.9.9/tam").is_ok());
        assert!(loopback.check_uri("http://[::1]:8080/tam").is_ok());
        for remote in [
            "http://localhost/tam",
            "http://10.0.0.1/tam",
            "http://tam.example/tam",
            "http://[::ffff:127.0.0.1]/tam",
        ] {
            assert_eq!(
                loopback.check_uri(remote),
                Err(TransportError::PlainHttpRefused),
                "{remote}"
            );
        }
        assert!(
            client(PlainHttp::Allow)
                .check_uri("http://tam.example/tam")
                .is_ok()
        );
    }

    #[test]
    fn uri_without_credentials_and_only_http_schemes() {
        let allow = client(PlainHttp::Allow);
        for bad in [
            "https://user:pw@tam.example/tam",
            "https://user@tam.example/tam",
            "ftp://tam.example/tam",
            "file:///etc/passwd",
            "unix:/run/tam.sock",
            "tam.example/tam",
        ] {
            assert!(
                matches!(allow.check_uri(bad), Err(TransportError::InvalidUri(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn only_undelivered_or_opening_posts_are_retried() {
        let connect = TransportError::Connect("refused".into());
        assert!(connect.is_retryable(false) && connect.is_retryable(true));
        assert!(TransportError::Timeout.is_retryable(true));
        assert!(!TransportError::Timeout.is_retryable(false));
        assert!(!TransportError::Network("reset".into()).is_retryable(false));
        for never in [
            TransportError::Tls("unknown issuer".into()),
            TransportError::Redirect { status: 302 },
            TransportError::Status { status: 503 },
            TransportError::MediaType(None),
            TransportError::TooLarge { limit: 1 },
        ] {
            assert!(!never.is_retryable(true), "{never}");
        }
    }
}
