//! `Content-Type` and `Accept` for `application/teep+cbor` (RFC 9110 §8.3, §12.5.1).

use axum::http::{HeaderMap, header};

/// The media type of TEEP messages (draft-ietf-teep-protocol §15).
pub const TEEP_CBOR: &str = "application/teep+cbor";

/// Whether a `Content-Type` value names `application/teep+cbor`: type and subtype compare
/// case-insensitively, parameters (`; charset=...`) are allowed and ignored.
pub(super) fn is_teep_cbor(value: &[u8]) -> bool {
    let Ok(value) = core::str::from_utf8(value) else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or_default().trim();
    essence.eq_ignore_ascii_case(TEEP_CBOR)
}

/// Whether the request's `Accept` admits `application/teep+cbor`. The most specific range
/// that matches decides (`application/teep+cbor` over `application/*` over `*/*`), and a
/// `q=0` there excludes it. A request without `Accept` is refused (otrp-over-http §6.1:
/// without an appropriate Accept header the TAM fails the request); so is a header that is
/// not text.
pub(super) fn accepts_teep_cbor(headers: &HeaderMap) -> bool {
    let mut best: Option<(u8, bool)> = None;
    let mut seen = false;
    for value in headers.get_all(header::ACCEPT) {
        seen = true;
        let Ok(value) = value.to_str() else {
            return false;
        };
        for range in value.split(',') {
            let mut parts = range.split(';');
            let essence = parts.next().unwrap_or_default().trim();
            let Some(rank) = specificity(essence) else {
                continue;
            };
            let positive = parts
                .filter_map(|p| p.split_once('='))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("q"))
                .is_none_or(|(_, q)| !q_is_zero(q.trim()));
            if best.is_none_or(|(r, _)| rank > r) {
                best = Some((rank, positive));
            }
        }
    }
    seen && best.is_some_and(|(_, positive)| positive)
}

/// How specifically a media range matches `application/teep+cbor`, if it does.
fn specificity(range: &str) -> Option<u8> {
    if range.eq_ignore_ascii_case(TEEP_CBOR) {
        Some(3)
    } else if range.eq_ignore_ascii_case("application/*") {
        Some(2)
    } else if range == "*/*" {
        Some(1)
    } else {
        None
    }
}

/// `0`, `0.`, `0.0`, `0.00`, `0.000` (RFC 9110 §12.4.2 qvalue zero).
fn q_is_zero(q: &str) -> bool {
    q.strip_prefix('0').is_some_and(|rest| {
        rest.strip_prefix('.')
            .unwrap_or(rest)
            .bytes()
            .all(|b| b == b'0')
            && rest.len() <= 4
    })
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn accept(values: &[&str]) -> bool {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(header::ACCEPT, HeaderValue::from_str(v).unwrap());
        }
        accepts_teep_cbor(&h)
    }

    #[test]
    fn content_type_is_a_media_type() {
        assert!(is_teep_cbor(b"application/teep+cbor"));
        assert!(is_teep_cbor(b"Application/TEEP+CBOR ; foo=bar"));
        assert!(!is_teep_cbor(b"application/teep+cbor2"));
        assert!(!is_teep_cbor(b"application/cbor"));
        assert!(!is_teep_cbor(b""));
        assert!(!is_teep_cbor(b"application/teep+cbor\xff"));
    }

    #[test]
    fn accept_ranges() {
        assert!(accept(&["application/teep+cbor"]));
        assert!(accept(&["text/html, APPLICATION/*;q=0.5"]));
        assert!(accept(&["*/*"]));
        assert!(accept(&["text/html", "application/teep+cbor; q=1"]));
        assert!(!accept(&[]));
        assert!(!accept(&["text/html"]));
        assert!(!accept(&["application/teep+cbor;q=0"]));
        assert!(!accept(&["*/*, application/teep+cbor;q=0.000"]));
        assert!(accept(&["application/teep+cbor;q=0.001"]));
        assert!(!accept(&["application/*;q=0, */*"]));
    }
}
