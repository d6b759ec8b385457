//! Who may open `/ws`: checked on the upgrade request, before any WebSocket exists.
//!
//! Two attacks go through a visitor's own browser. **Cross-site WebSocket hijacking**: a page on
//! another site opens `ws://127.0.0.1:8080/ws` (browsers let any page do so) and drives the live
//! run. Browsers always send the page's `Origin` with the handshake and no page can change it, so
//! the server accepts only its own page's origin and the ones listed with `--allow-origin`.
//! **DNS rebinding**: `evil.example` is made to resolve to 127.0.0.1, so its page *is* same-origin
//! with the server by name. The `Host` header still says `evil.example`, so the server answers only
//! to names it knows: IP addresses (which cannot be rebound), `localhost`, and the hosts of the
//! allowed origins.
//!
//! A request without `Origin` comes from no browser (a script, the load tool); it is let through,
//! since such a client could send any header it liked anyway.

use crate::error::HttpError;
use axum::http::HeaderMap;
use axum::http::header::{HOST, ORIGIN};
use std::net::IpAddr;

/// Behind a proxy such as `trunk serve`'s, the address the browser asked for.
const FORWARDED_HOST: &str = "x-forwarded-host";

/// An origin as browsers send it: `scheme://host[:port]`, lower case, without a default port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    scheme: String,
    /// `host` or `host:port`, the port left out when it is the scheme's default.
    authority: String,
}

impl Origin {
    /// Reads `text` such as `https://talk.example` or `http://127.0.0.1:8080`; only `http` and
    /// `https` origins, with no path.
    pub fn parse(text: &str) -> Result<Origin, String> {
        let bad = |why: &str| {
            format!(
                "{text:?} is not an origin ({why}); write one such as https://talk.example or http://127.0.0.1:8080"
            )
        };
        let lower = text.trim().to_ascii_lowercase();
        let (scheme, rest) = lower.split_once("://").ok_or_else(|| bad("no scheme"))?;
        if scheme != "http" && scheme != "https" {
            return Err(bad("the scheme is not http or https"));
        }
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.is_empty()
            || authority.contains(['/', '?', '#', '@', ' '])
            || host_of(authority).is_empty()
        {
            return Err(bad("it must be a scheme and a host, with no path"));
        }
        Ok(Origin {
            authority: without_default_port(scheme, authority),
            scheme: scheme.to_string(),
        })
    }

    /// The host name or address, without the port.
    pub fn host(&self) -> &str {
        host_of(&self.authority)
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}", self.scheme, self.authority)
    }
}

/// `host:80` for http and `host:443` for https are written `host`, as browsers write them.
fn without_default_port(scheme: &str, authority: &str) -> String {
    let default = if scheme == "https" { ":443" } else { ":80" };
    authority
        .strip_suffix(default)
        .unwrap_or(authority)
        .to_string()
}

/// The host of `host[:port]`, `[v6][:port]` included.
fn host_of(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or("");
    }
    authority.split(':').next().unwrap_or("")
}

/// Which pages and host names the server answers `/ws` for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccessPolicy {
    /// Origins allowed besides the page's own (`--allow-origin`).
    pub allowed_origins: Vec<Origin>,
}

impl AccessPolicy {
    /// Checks an upgrade request's `Host` (and `X-Forwarded-Host`) and `Origin`.
    pub fn check(&self, headers: &HeaderMap) -> Result<(), HttpError> {
        let header = |name| {
            headers
                .get(name)
                .map(|v| v.to_str().unwrap_or("").trim().to_ascii_lowercase())
        };
        let host = header(HOST.as_str()).unwrap_or_default();
        let forwarded_host = header(FORWARDED_HOST);
        for name in std::iter::once(&host).chain(forwarded_host.as_ref()) {
            if !self.answers_to(host_of(name)) {
                return Err(HttpError::HostNotAllowed { host: name.clone() });
            }
        }
        let Some(origin_text) = header(ORIGIN.as_str()) else {
            return Ok(());
        };
        let refused = || HttpError::OriginNotAllowed {
            origin: origin_text.clone(),
        };
        let origin = Origin::parse(&origin_text).map_err(|_| refused())?;
        // The page's own origin: the address the browser asked this server (or the proxy in
        // front of it) for, over either scheme, as a TLS-terminating proxy serves it over https.
        let asked_for = forwarded_host.as_deref().unwrap_or(&host);
        let same_origin = without_default_port(&origin.scheme, asked_for) == origin.authority;
        if same_origin || self.allowed_origins.contains(&origin) {
            Ok(())
        } else {
            Err(refused())
        }
    }

    /// True for IP addresses, `localhost`, and the hosts of allowed origins.
    fn answers_to(&self, host: &str) -> bool {
        host.parse::<IpAddr>().is_ok()
            || host == "localhost"
            || self.allowed_origins.iter().any(|o| o.host() == host)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn check(policy: &AccessPolicy, headers: &[(&'static str, &str)]) -> Result<(), String> {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        policy.check(&map).map_err(|e| e.to_string())
    }

    #[test]
    fn origins_are_read_as_browsers_write_them() {
        let origin = |t| Origin::parse(t).map(|o| o.to_string());
        assert_eq!(
            origin("HTTPS://Talk.Example/").unwrap(),
            "https://talk.example"
        );
        assert_eq!(
            origin("https://talk.example:443").unwrap(),
            "https://talk.example"
        );
        assert_eq!(
            origin("http://talk.example:443").unwrap(),
            "http://talk.example:443"
        );
        assert_eq!(origin("http://[::1]:8000").unwrap(), "http://[::1]:8000");
        for bad in [
            "talk.example",
            "ftp://x",
            "https://",
            "https://x/page",
            "https://u@x",
            "null",
        ] {
            assert!(origin(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_pages_own_origin_and_listed_ones_pass_others_are_refused() {
        let open = AccessPolicy::default();
        let listed = AccessPolicy {
            allowed_origins: vec![Origin::parse("https://blog.example").unwrap()],
        };
        let host = ("host", "127.0.0.1:8080");
        assert_eq!(check(&open, &[host]), Ok(()), "no browser");
        assert_eq!(
            check(&open, &[host, ("origin", "http://127.0.0.1:8080")]),
            Ok(())
        );
        let evil = check(&open, &[host, ("origin", "https://evil.example")]).unwrap_err();
        assert!(
            evil.contains("--allow-origin https://evil.example"),
            "{evil}"
        );
        assert!(check(&open, &[host, ("origin", "null")]).is_err());
        assert!(check(&open, &[host, ("origin", "http://127.0.0.1:8081")]).is_err());
        assert!(check(&open, &[host, ("origin", "https://blog.example")]).is_err());
        assert_eq!(
            check(&listed, &[host, ("origin", "https://blog.example")]),
            Ok(())
        );
        // Behind a TLS-terminating proxy that passes the name on.
        let proxied = [("host", "blog.example"), ("origin", "https://blog.example")];
        assert_eq!(check(&listed, &proxied), Ok(()));
        // Behind `trunk serve`: Host is the backend's, the browser's address is forwarded.
        let trunk = [
            ("host", "127.0.0.1"),
            ("x-forwarded-host", "127.0.0.1:8000"),
            ("origin", "http://127.0.0.1:8000"),
        ];
        assert_eq!(check(&open, &trunk), Ok(()));
    }

    #[test]
    fn only_names_that_cannot_be_rebound_or_were_listed_are_answered() {
        let listed = AccessPolicy {
            allowed_origins: vec![Origin::parse("https://talk.example").unwrap()],
        };
        for host in [
            "localhost:8080",
            "10.1.2.3:8080",
            "[::1]:8080",
            "talk.example",
        ] {
            assert_eq!(check(&listed, &[("host", host)]), Ok(()), "{host}");
        }
        for host in ["evil.example:8080", "localhost.evil.example", ""] {
            let refused = check(&listed, &[("host", host)]).unwrap_err();
            assert!(refused.contains("does not answer to"), "{host}: {refused}");
        }
        let rebound = [
            ("host", "127.0.0.1"),
            ("x-forwarded-host", "evil.example:8000"),
        ];
        assert!(check(&listed, &rebound).is_err());
    }
}
