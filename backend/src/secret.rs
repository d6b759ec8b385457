//! Secrets that must not leave the process: a broker URL's password is used to connect and
//! nowhere else. [`BrokerUrl`] prints itself without it (so a `Debug` of the configuration, an
//! error or a log line cannot carry it), and [`BrokerUrl::scrub`] takes it out of error texts
//! written by libraries that were handed the URL.

/// Written in place of a password.
const HIDDEN: &str = "***";

/// A broker's `amqp://user:password@host:port/vhost` URL; `Display` and `Debug` hide the
/// password.
#[derive(Clone, PartialEq, Eq)]
pub struct BrokerUrl(String);

impl BrokerUrl {
    /// The URL `text`.
    pub fn new(text: impl Into<String>) -> BrokerUrl {
        BrokerUrl(text.into())
    }

    /// The whole URL, password included: only for connecting.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `text` with this URL's password taken out, as written and percent-decoded.
    pub fn scrub(&self, text: &str) -> String {
        let Some(password) = password_of(&self.0).filter(|p| !p.is_empty()) else {
            return text.to_string();
        };
        let decoded = percent_decode(password);
        let mut scrubbed = text.replace(password, HIDDEN);
        if !decoded.is_empty() {
            scrubbed = scrubbed.replace(&decoded, HIDDEN);
        }
        redact_urls(&scrubbed)
    }
}

impl std::fmt::Display for BrokerUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&redact_urls(&self.0))
    }
}

impl std::fmt::Debug for BrokerUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BrokerUrl({self})")
    }
}

/// The password of `scheme://user:password@host…`, if it has one.
fn password_of(url: &str) -> Option<&str> {
    let (_, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let (userinfo, _) = authority.rsplit_once('@')?;
    userinfo.split_once(':').map(|(_, password)| password)
}

/// `%41` → `A`; bytes that do not decode stay as written.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(hi), Some(lo)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            )
        {
            out.push((hi * 16 + lo) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Every `scheme://user:password@…` in `text` with its password replaced by `***`.
pub fn redact_urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (before, after) = rest.split_at(at + 3);
        out.push_str(before);
        let end = after
            .find(|c: char| c == '/' || c == '?' || c == '#' || c.is_whitespace() || c == '"')
            .unwrap_or(after.len());
        let authority = &after[..end];
        match authority.rsplit_once('@') {
            Some((userinfo, host)) => match userinfo.split_once(':') {
                Some((user, _)) => out.push_str(&format!("{user}:{HIDDEN}@{host}")),
                None => out.push_str(authority),
            },
            None => out.push_str(authority),
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_hidden_wherever_a_url_is_written() {
        let url = BrokerUrl::new("amqp://crosstalk:s3cr%40t@127.0.0.1:5672/%2f");
        assert_eq!(url.to_string(), "amqp://crosstalk:***@127.0.0.1:5672/%2f");
        assert_eq!(
            format!("{url:?}"),
            "BrokerUrl(amqp://crosstalk:***@127.0.0.1:5672/%2f)"
        );
        assert_eq!(url.expose(), "amqp://crosstalk:s3cr%40t@127.0.0.1:5672/%2f");
        assert_eq!(
            url.scrub("bad password s3cr@t for amqp://crosstalk:s3cr%40t@127.0.0.1:5672/%2f"),
            "bad password *** for amqp://crosstalk:***@127.0.0.1:5672/%2f"
        );
        let no_password = BrokerUrl::new("amqp://127.0.0.1:5672/%2f");
        assert_eq!(no_password.to_string(), "amqp://127.0.0.1:5672/%2f");
        assert_eq!(no_password.scrub("refused"), "refused");
    }

    #[test]
    fn text_with_urls_keeps_everything_but_passwords() {
        let check = |text: &str, expected: &str| assert_eq!(redact_urls(text), expected);
        check("no url here", "no url here");
        check(
            "\"amqps://u:p@h/x\" is not an amqp:// URL",
            "\"amqps://u:***@h/x\" is not an amqp:// URL",
        );
        check(
            "amqp://user@h:1 and amqp://a:b:c@d",
            "amqp://user@h:1 and amqp://a:***@d",
        );
        check("http://a:b@c?d", "http://a:***@c?d");
    }
}
