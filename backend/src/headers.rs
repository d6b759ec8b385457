//! Security headers on every response, added as one layer over all routes so the page's own
//! serving code stays about files.
//!
//! - `X-Content-Type-Options: nosniff`: a file is only ever what its type says.
//! - `Referrer-Policy: no-referrer`: the page's address holds the whole run's settings; links and
//!   trace files fetched from elsewhere do not learn it.
//! - `Content-Security-Policy` on HTML: scripts, styles and everything else only from the page's
//!   own origin; the wasm may be compiled (`'wasm-unsafe-eval'`, which allows WebAssembly and not
//!   JavaScript `eval`); Trunk's inline loader script is allowed by its SHA-256, computed from the
//!   built `index.html` (so a rebuilt page is served with its new hash, without a restart);
//!   `connect-src` also allows `http:` and `https:` because a recorded trace may be loaded from
//!   any address (`?source=recorded&trace=<url>`). `frame-ancestors *` only for the embed mode
//!   (`embed=1`), which exists to be framed by any site; the full page, with its live controls,
//!   may be framed only by itself, so no other site can overlay it to steal clicks.

use axum::extract::{Request, State};
use axum::http::header::{CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine;
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

const NOSNIFF: HeaderName = HeaderName::from_static("x-content-type-options");

/// What the headers depend on: the built page's inline scripts.
pub(crate) struct PagePolicy {
    index: PathBuf,
    /// `'sha256-…'` sources of index.html's inline scripts, with the file's modification time
    /// and length they were computed for.
    script_hashes: Mutex<Option<(SystemTime, u64, String)>>,
}

impl PagePolicy {
    /// The policy of the page built into `dist_dir`.
    pub(crate) fn new(dist_dir: PathBuf) -> Arc<PagePolicy> {
        Arc::new(PagePolicy {
            index: dist_dir.join("index.html"),
            script_hashes: Mutex::new(None),
        })
    }

    /// The hash sources of the built page's inline scripts, recomputed when the file changed.
    async fn script_hashes(&self) -> String {
        let Ok(metadata) = tokio::fs::metadata(&self.index).await else {
            return String::new();
        };
        let stamp = (
            metadata.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            metadata.len(),
        );
        if let Some((modified, len, hashes)) = &*self.lock()
            && (*modified, *len) == stamp
        {
            return hashes.clone();
        }
        let Ok(html) = tokio::fs::read_to_string(&self.index).await else {
            return String::new();
        };
        let hashes = inline_script_hashes(&html).join(" ");
        *self.lock() = Some((stamp.0, stamp.1, hashes.clone()));
        hashes
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<(SystemTime, u64, String)>> {
        self.script_hashes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The Content-Security-Policy of the page; `script_hashes` are `'sha256-…'` sources.
pub fn content_security_policy(script_hashes: &str, embed: bool) -> String {
    let ancestors = if embed { "*" } else { "'self'" };
    format!(
        "default-src 'self'; script-src 'self' 'wasm-unsafe-eval' {script_hashes}; \
         style-src 'self'; img-src 'self' data: blob:; connect-src 'self' http: https:; \
         object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors {ancestors}"
    )
}

/// `'sha256-…'` of the text of every inline `<script>` (one without `src`) in `html`.
pub fn inline_script_hashes(html: &str) -> Vec<String> {
    let mut hashes = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find("<script") {
        rest = &rest[start..];
        let Some(tag_end) = rest.find('>') else { break };
        let tag = &rest[..tag_end];
        let body = &rest[tag_end + 1..];
        let Some(body_end) = body.find("</script") else {
            break;
        };
        if !tag.contains(" src=") {
            let digest = Sha256::digest(&body.as_bytes()[..body_end]);
            let encoded = base64::engine::general_purpose::STANDARD.encode(digest);
            hashes.push(format!("'sha256-{encoded}'"));
        }
        rest = &body[body_end..];
    }
    hashes
}

/// True when the query asks for the embed mode (`embed=1`, as the page reads it).
fn is_embed(query: Option<&str>) -> bool {
    query
        .unwrap_or("")
        .split('&')
        .any(|pair| matches!(pair.split_once('='), Some(("embed", "1" | "true" | "yes"))))
}

/// The layer: every response gets `nosniff` and the referrer policy, HTML also the CSP.
pub(crate) async fn security_headers(
    State(policy): State<Arc<PagePolicy>>,
    request: Request,
    next: Next,
) -> Response {
    let embed = is_embed(request.uri().query());
    let mut response = next.run(request).await;
    let is_html = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    let csp = if is_html {
        let hashes = policy.script_hashes().await;
        HeaderValue::from_str(&content_security_policy(&hashes, embed)).ok()
    } else {
        None
    };
    let headers = response.headers_mut();
    headers.insert(NOSNIFF, HeaderValue::from_static("nosniff"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    if let Some(csp) = csp {
        headers.insert(CONTENT_SECURITY_POLICY, csp);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_scripts_are_hashed_and_loaded_ones_are_not() {
        let html = "<head><script src=\"/a.js\"></script><script type=\"module\">\nimport init from '/f.js';\n</script></head>\
                    <body><script>x</script></body>";
        let hashes = inline_script_hashes(html);
        // echo -n "\nimport init from '/f.js';\n" | openssl dgst -sha256 -binary | base64
        let expected = base64::engine::general_purpose::STANDARD
            .encode(Sha256::digest(b"\nimport init from '/f.js';\n"));
        assert_eq!(hashes.len(), 2);
        assert_eq!(hashes[0], format!("'sha256-{expected}'"));
        assert_eq!(
            hashes[1], "'sha256-LXEWQrcmsEQBYnyp+6wy9chTD7GQPMTbAiWHF5IaSIE='",
            "sha256 of `x`"
        );
    }

    #[test]
    fn only_the_embed_may_be_framed_by_other_sites() {
        assert!(is_embed(Some("scenario=x&embed=1")));
        assert!(is_embed(Some("embed=true")));
        assert!(!is_embed(Some("embed=0")));
        assert!(!is_embed(Some("noembed=1")));
        assert!(!is_embed(None));
        assert!(content_security_policy("", true).ends_with("frame-ancestors *"));
        assert!(content_security_policy("", false).ends_with("frame-ancestors 'self'"));
    }
}
