//! The operator's console: a web UI at `/console` on the admin listener, its three assets
//! embedded in the binary (no build step, no third-party JavaScript).
//!
//! Pinned choices:
//! * the assets are public (they hold no data); the page asks for the admin token, keeps
//!   it in `sessionStorage` and calls only the documented admin API with it as a bearer
//!   token, so everything the console shows can also be scripted;
//! * every console and admin response carries a strict Content-Security-Policy
//!   ([`CSP`]: scripts and styles from this origin only, never inline; no frames,
//!   forms or plugins), `X-Frame-Options: DENY`, `nosniff`, `no-referrer` and
//!   `Cache-Control: no-store`;
//! * the script writes every value with `textContent` (never `innerHTML`): component
//!   IDs, err-msg and report text come from devices and are shown as text;
//! * state-changing admin calls from another site are refused ([`cross_site`]): a
//!   browser's `Sec-Fetch-Site` must be `same-origin` or `none`, and an `Origin` must be
//!   the listener's own `Host`. The bearer token already keeps a forged request out (a
//!   browser never adds it by itself); this is the second wall.

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// The console's Content-Security-Policy.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; \
    frame-ancestors 'none'";

const INDEX: &str = include_str!("assets/index.html");
const SCRIPT: &str = include_str!("assets/console.js");
const STYLE: &str = include_str!("assets/console.css");

/// The console's routes (public: the assets only).
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/console", get(|| asset("text/html; charset=utf-8", INDEX)))
        .route(
            "/console/",
            get(|| asset("text/html; charset=utf-8", INDEX)),
        )
        .route(
            "/console/console.js",
            get(|| asset("text/javascript; charset=utf-8", SCRIPT)),
        )
        .route(
            "/console/console.css",
            get(|| asset("text/css; charset=utf-8", STYLE)),
        )
}

async fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

/// The headers every console and admin response carries.
pub async fn security_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Whether a request is a state-changing call made from another site: a method other
/// than GET/HEAD/OPTIONS with `Sec-Fetch-Site` other than `same-origin`/`none`, or with an
/// `Origin` whose host is not the request's `Host`. Requests without either header (curl,
/// the CLI) are not a browser's and pass.
pub fn cross_site(method: &Method, headers: &HeaderMap) -> bool {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return false;
    }
    if let Some(site) = headers.get("sec-fetch-site")
        && !matches!(site.as_bytes(), b"same-origin" | b"none")
    {
        return true;
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return false;
    };
    let host = headers.get(header::HOST).map(HeaderValue::as_bytes);
    let origin_host = origin
        .to_str()
        .ok()
        .and_then(|o| o.split_once("://"))
        .map(|(_, h)| h.as_bytes());
    origin_host.is_none() || origin_host != host
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn cross_site_writes_are_recognised() {
        let post = Method::POST;
        assert!(!cross_site(&post, &headers(&[])), "curl and the CLI pass");
        assert!(!cross_site(
            &post,
            &headers(&[
                ("sec-fetch-site", "same-origin"),
                ("origin", "http://127.0.0.1:8481"),
                ("host", "127.0.0.1:8481")
            ])
        ));
        assert!(cross_site(
            &post,
            &headers(&[("sec-fetch-site", "cross-site")])
        ));
        assert!(cross_site(
            &post,
            &headers(&[("sec-fetch-site", "same-site")])
        ));
        assert!(cross_site(
            &Method::PUT,
            &headers(&[
                ("origin", "http://evil.example"),
                ("host", "127.0.0.1:8481")
            ])
        ));
        assert!(cross_site(
            &Method::DELETE,
            &headers(&[("origin", "null"), ("host", "127.0.0.1:8481")])
        ));
        assert!(!cross_site(
            &Method::GET,
            &headers(&[("sec-fetch-site", "cross-site")])
        ));
    }
}
