//! The one redactor every outgoing string passes through: log lines, the status page, error
//! messages, `report`, `check` and `--config.check`.
//!
//! It knows every secret in use, because the secret types register themselves when they are
//! created ([`crate::openstack::config::Secret`] for passwords, application credential
//! secrets and Keystone tokens, [`SecretUrl`] for the user info of a URL). Besides those exact
//! strings (and the forms a server echoing a request would show them in: JSON-escaped and
//! percent-encoded) it removes two shapes whatever their content:
//! - the user info of any URL: `http://admin:pw@host/` becomes `http://<redacted>@host/`;
//! - the value of an `Authorization`, `X-Auth-Token`, `X-Subject-Token` or `X-Service-Token`
//!   header, in any case, as a header line, a JSON member or a Python dict entry.
//!
//! Text from an upstream server goes through [`upstream_text`]: redacted as a whole first, then
//! stripped of control and bidirectional-formatting characters, put on one line, and cut to
//! [`UPSTREAM_TEXT_LIMIT`] bytes, so that no cut can leave the start of a secret behind.

use std::collections::VecDeque;
use std::sync::RwLock;

/// What a secret is replaced with.
pub const REDACTED: &str = "<redacted>";

/// The most bytes of an upstream server's text (an error body or its message) kept in an error.
pub const UPSTREAM_TEXT_LIMIT: usize = 512;

/// How much of an upstream text is redacted before the cut (besides the longest secret form):
/// room for the kept bytes after whitespace runs collapse.
const UPSTREAM_WINDOW: usize = 8 * UPSTREAM_TEXT_LIMIT;

/// How many Keystone tokens the redactor remembers: a token is renewed about hourly, so this
/// covers the tokens of the last half day while keeping the list (and the work per line) small.
const REMEMBERED_TOKENS: usize = 12;

/// Header names whose values are always secret (compared case-insensitively).
const SECRET_HEADERS: &[&str] = &[
    "authorization",
    "x-auth-token",
    "x-subject-token",
    "x-service-token",
];

/// What kind of secret is registered: credentials are kept for the life of the process,
/// tokens only the most recent `REMEMBERED_TOKENS` (12).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretKind {
    /// A password, an application credential secret, a URL's user info.
    Credential,
    /// A Keystone token.
    Token,
}

/// The secrets to remove, each with the forms it may take in an echo. `Debug` is not derived:
/// it would print them.
#[derive(Default)]
pub struct Redactor {
    credentials: Vec<Vec<String>>,
    tokens: VecDeque<Vec<String>>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redactor")
            .field("credentials", &self.credentials.len())
            .field("tokens", &self.tokens.len())
            .finish()
    }
}

impl Redactor {
    /// A redactor that knows no secret yet (it still removes the URL and header shapes).
    pub const fn new() -> Self {
        Self {
            credentials: Vec::new(),
            tokens: VecDeque::new(),
        }
    }

    /// Learns `secret`. An empty secret is ignored: it would match everywhere.
    pub fn add(&mut self, secret: &str, kind: SecretKind) {
        if secret.is_empty() {
            return;
        }
        let forms = echo_forms(secret);
        match kind {
            SecretKind::Credential => {
                if !self.credentials.contains(&forms) {
                    self.credentials.push(forms);
                }
            }
            SecretKind::Token => {
                if !self.tokens.contains(&forms) {
                    if self.tokens.len() == REMEMBERED_TOKENS {
                        self.tokens.pop_front();
                    }
                    self.tokens.push_back(forms);
                }
            }
        }
    }

    /// The length of the longest form of any known secret (0 when none is known).
    fn longest_form(&self) -> usize {
        self.credentials
            .iter()
            .chain(&self.tokens)
            .flatten()
            .map(String::len)
            .max()
            .unwrap_or(0)
    }

    /// `text` without any known secret, URL user info or secret header value.
    pub fn redact(&self, text: &str) -> String {
        let known = self
            .credentials
            .iter()
            .chain(&self.tokens)
            .flatten()
            .map(String::as_str);
        let without_known = replace_spans(text, &known_spans(text, known));
        let without_user_info = replace_spans(&without_known, &user_info_spans(&without_known));
        replace_spans(&without_user_info, &header_value_spans(&without_user_info))
    }
}

/// The forms a secret takes when a server echoes the request: as sent, JSON-escaped, and
/// percent-encoded with upper- or lower-case hex digits.
fn echo_forms(secret: &str) -> Vec<String> {
    let json = serde_json::to_string(secret).unwrap_or_default();
    let json = json
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(secret);
    let percent = crate::text::percent_encode(secret);
    let mut forms = vec![
        secret.to_string(),
        json.to_string(),
        percent.to_ascii_lowercase_hex(),
        percent,
    ];
    forms.sort();
    forms.dedup();
    forms
}

/// Lower-cases the hex digits of percent-escapes only.
trait LowercaseHex {
    fn to_ascii_lowercase_hex(&self) -> String;
}

impl LowercaseHex for String {
    fn to_ascii_lowercase_hex(&self) -> String {
        let mut out = String::with_capacity(self.len());
        let mut hex_left = 0;
        for c in self.chars() {
            if hex_left > 0 {
                out.push(c.to_ascii_lowercase());
                hex_left -= 1;
            } else {
                if c == '%' {
                    hex_left = 2;
                }
                out.push(c);
            }
        }
        out
    }
}

/// Every byte range where one of `needles` occurs, overlapping occurrences included.
fn known_spans<'a>(text: &str, needles: impl Iterator<Item = &'a str>) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    for needle in needles.filter(|n| !n.is_empty()) {
        let mut from = 0;
        while let Some(found) = text[from..].find(needle) {
            let start = from + found;
            spans.push((start, start + needle.len()));
            // Step one character, so that an occurrence overlapping this one is found too.
            from = start + text[start..].chars().next().map_or(1, char::len_utf8);
        }
    }
    spans
}

/// The user info of every `scheme://user:password@host` in `text`: from after `://` to the
/// last `@` of the authority (a password may hold a raw `@`; IPv6 hosts are bracketed).
fn user_info_spans(text: &str) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut from = 0;
    while let Some(found) = text[from..].find("://") {
        let start = from + found + 3;
        let authority_end = text[start..]
            .find(|c: char| {
                matches!(c, '/' | '?' | '#' | '"' | '\'' | '<' | '>' | '`' | '\\')
                    || c.is_whitespace()
                    || c.is_control()
            })
            .map_or(text.len(), |end| start + end);
        if let Some(at) = text[start..authority_end].rfind('@') {
            if text[start..start + at] != *REDACTED && at > 0 {
                spans.push((start, start + at));
            }
        }
        from = authority_end.max(start);
    }
    spans
}

/// The value of every secret header in `text`: `Name: value` up to the end of the line, or
/// `"name": "value"` / `'name': 'value'` up to the closing quote.
fn header_value_spans(text: &str) -> Vec<(usize, usize)> {
    let lower = text.to_ascii_lowercase();
    let bytes = text.as_bytes();
    let mut spans = Vec::new();
    for name in SECRET_HEADERS {
        let mut from = 0;
        while let Some(found) = lower[from..].find(name) {
            let mut at = from + found + name.len();
            from = at;
            let skip = |at: &mut usize, set: &[u8]| {
                while *at < bytes.len() && set.contains(&bytes[*at]) {
                    *at += 1;
                }
            };
            skip(&mut at, b"\"' \t");
            if at >= bytes.len() || !matches!(bytes[at], b':' | b'=') {
                continue;
            }
            at += 1;
            skip(&mut at, b" \t");
            let quote = bytes.get(at).copied().filter(|b| matches!(b, b'"' | b'\''));
            if quote.is_some() {
                at += 1;
            }
            let end = text[at..]
                .find(|c: char| match quote {
                    Some(q) => c == q as char || c == '\n' || c == '\r',
                    None => matches!(c, '\n' | '\r' | '"' | '\'' | ',' | ';' | '}' | '&' | '<'),
                })
                .map_or(text.len(), |end| at + end);
            if end > at && text[at..end] != *REDACTED {
                spans.push((at, end));
            }
            from = end.max(from);
        }
    }
    spans
}

/// `text` with each of the (possibly overlapping) byte ranges `spans` replaced by one
/// [`REDACTED`] per merged range.
fn replace_spans(text: &str, spans: &[(usize, usize)]) -> String {
    if spans.is_empty() {
        return text.to_string();
    }
    let mut spans = spans.to_vec();
    spans.sort_unstable();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut current: Option<(usize, usize)> = None;
    for (start, end) in spans {
        match current {
            Some((_, current_end)) if start <= current_end => {
                current = current.map(|(s, e)| (s, e.max(end)));
            }
            _ => {
                if let Some((s, e)) = current {
                    out.push_str(&text[copied..s]);
                    out.push_str(REDACTED);
                    copied = e;
                }
                current = Some((start, end));
            }
        }
    }
    if let Some((s, e)) = current {
        out.push_str(&text[copied..s]);
        out.push_str(REDACTED);
        copied = e;
    }
    out.push_str(&text[copied..]);
    out
}

/// The secrets of this process.
static REGISTRY: RwLock<Redactor> = RwLock::new(Redactor::new());

/// Makes the process-wide redactor remove `secret` from now on.
pub fn register(secret: &str, kind: SecretKind) {
    REGISTRY
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .add(secret, kind);
}

/// `text` without any secret the process knows, URL user info or secret header value.
pub fn redact(text: &str) -> String {
    REGISTRY
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .redact(text)
}

/// Text from an upstream server, fit for an error message: redacted, control and
/// bidirectional-formatting characters removed, whitespace runs made one space, and cut to
/// [`UPSTREAM_TEXT_LIMIT`] bytes on a character boundary (`...` marks a cut).
pub fn upstream_text(text: &str) -> String {
    let registry = REGISTRY
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    upstream_text_with(&registry, text)
}

/// [`upstream_text`] with `redactor`. Only a window of the text is redacted (bodies may be
/// megabytes): [`UPSTREAM_WINDOW`] bytes plus the longest secret form, so that every secret
/// starting inside the window is whole in it. A secret cut by the window's end can only lie in
/// its last "longest form" bytes, which are dropped after redaction: no cut leaves a prefix.
fn upstream_text_with(redactor: &Redactor, text: &str) -> String {
    let longest = redactor.longest_form();
    if text.len() <= UPSTREAM_WINDOW + longest {
        return bounded_one_line(&redactor.redact(text), false);
    }
    let window = &text[..floor_char_boundary(text, UPSTREAM_WINDOW + longest)];
    let redacted = redactor.redact(window);
    let keep = floor_char_boundary(&redacted, redacted.len().saturating_sub(longest));
    bounded_one_line(&redacted[..keep], true)
}

/// The largest character boundary of `text` at or below `at`.
fn floor_char_boundary(text: &str, at: usize) -> usize {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// The redacted text on one line, without unsafe characters, cut to [`UPSTREAM_TEXT_LIMIT`]
/// bytes; `...` marks a cut, here or before (`already_cut`).
fn bounded_one_line(text: &str, already_cut: bool) -> String {
    let cleaned: String = text
        .chars()
        .map(|c| if is_unsafe_char(c) { ' ' } else { c })
        .collect();
    let joined = cleaned.split_whitespace().collect::<Vec<_>>().join(" ");
    if joined.len() <= UPSTREAM_TEXT_LIMIT && !already_cut {
        return joined;
    }
    let cut = floor_char_boundary(&joined, UPSTREAM_TEXT_LIMIT);
    format!("{}...", &joined[..cut])
}

/// A URL from an upstream server (a redirect's `Location`), fit for a message: its query and
/// fragment, which may carry a token or a signature, replaced by `?<redacted>`, then through
/// [`upstream_text`] (user info and known secrets removed, one line, bounded).
pub fn upstream_url(text: &str) -> String {
    match text.find(['?', '#']) {
        Some(cut) => upstream_text(&format!("{}?{REDACTED}", &text[..cut])),
        None => upstream_text(text),
    }
}

/// Control characters and the invisible ones that reorder or hide text on a terminal.
fn is_unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

/// `text` redacted, with control and bidirectional-formatting characters made spaces: for
/// messages built from upstream values that are not cut short (error texts, names).
pub fn clean_line(text: &str) -> String {
    redact(text)
        .chars()
        .map(|c| if is_unsafe_char(c) { ' ' } else { c })
        .collect()
}

/// The longest message built from upstream values that [`clean_message`] lets through, bytes.
pub const MESSAGE_LIMIT: usize = 4096;

/// [`clean_line`] cut to [`MESSAGE_LIMIT`] bytes on a character boundary (`...` marks a cut):
/// for messages the exporter builds around upstream names and lists (a hypervisor search
/// naming every candidate), which no upstream answer may make megabytes long. The cut comes
/// after redaction, so it never leaves part of a secret.
pub fn clean_message(text: &str) -> String {
    let clean = clean_line(text);
    if clean.len() <= MESSAGE_LIMIT {
        return clean;
    }
    let cut = floor_char_boundary(&clean, MESSAGE_LIMIT);
    format!("{}...", &clean[..cut])
}

/// Wraps the log's writer (`tracing_subscriber`'s `MakeWriter`): each event is buffered whole
/// and written redacted, so that no log line, whatever its fields, carries a known secret.
#[derive(Debug, Clone, Copy, Default)]
pub struct RedactingWriter<M>(pub M);

/// One event's output, written redacted to the inner writer when dropped.
pub struct RedactedEvent<W: std::io::Write> {
    buffer: Vec<u8>,
    inner: W,
}

impl<W: std::io::Write> std::io::Write for RedactedEvent<W> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<W: std::io::Write> Drop for RedactedEvent<W> {
    fn drop(&mut self) {
        if self.buffer.is_empty() {
            return;
        }
        let line = redact(&String::from_utf8_lossy(&self.buffer));
        // A log line that cannot be written has nowhere to be reported.
        let _ = self
            .inner
            .write_all(line.as_bytes())
            .and_then(|()| self.inner.flush());
    }
}

impl<'a, M: tracing_subscriber::fmt::MakeWriter<'a>> tracing_subscriber::fmt::MakeWriter<'a>
    for RedactingWriter<M>
{
    type Writer = RedactedEvent<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        RedactedEvent {
            buffer: Vec::new(),
            inner: self.0.make_writer(),
        }
    }
}

/// A URL that may carry user info (`http://user:password@host/`). `Display` and `Debug` show
/// it with the user info replaced by [`REDACTED`]; [`SecretUrl::expose`] gives it whole, for
/// the one place that sends a request. Creating one registers the user info (as written and
/// percent-decoded) with the redactor.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretUrl(String);

impl SecretUrl {
    /// Wraps `url`, registering its user info.
    pub fn new(url: impl Into<String>) -> Self {
        let url = url.into();
        for secret in user_info_secrets(&url) {
            register(&secret, SecretKind::Credential);
        }
        Self(url)
    }

    /// The URL with its user info: only for sending a request.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL as shown: user info replaced.
    pub fn shown(&self) -> String {
        redact(&self.0)
    }
}

impl std::fmt::Display for SecretUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown())
    }
}

impl std::fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretUrl({:?})", self.shown())
    }
}

/// The secret parts of a URL's user info, found leniently (a password with a raw `/` or `@`
/// still counts): the password as written and percent-decoded, and `user:password`.
fn user_info_secrets(url: &str) -> Vec<String> {
    let Some((_, rest)) = url.split_once("://") else {
        return Vec::new();
    };
    let Some(at) = rest.rfind('@') else {
        return Vec::new();
    };
    let user_info = &rest[..at];
    let mut secrets = vec![user_info.to_string(), percent_decode(user_info)];
    if let Some((_, password)) = user_info.split_once(':') {
        secrets.push(password.to_string());
        secrets.push(percent_decode(password));
    }
    secrets.retain(|s| !s.is_empty());
    secrets
}

/// Decodes `%XX` escapes (invalid ones are kept as written; invalid UTF-8 is replaced).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(high), Some(low)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((high * 16 + low) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_cleaned_and_bounded_after_redaction() {
        register("MsgSecret-4410", SecretKind::Credential);
        let long = format!("{}é MsgSecret-4410\u{1b}", "a".repeat(MESSAGE_LIMIT - 2));
        let message = clean_message(&long);
        assert!(message.len() <= MESSAGE_LIMIT + 3, "{}", message.len());
        assert!(message.ends_with("..."));
        assert!(!message.contains("MsgSecret"));
        assert_eq!(clean_message("x MsgSecret-4410\u{1b}y"), "x <redacted> y");
    }

    #[test]
    fn upstream_urls_lose_user_info_query_and_fragment() {
        assert_eq!(
            upstream_url("http://u:LocPw-1@127.0.0.1:1/v3?sig=abc&token=def#frag"),
            "http://<redacted>@127.0.0.1:1/v3?<redacted>"
        );
        assert_eq!(
            upstream_url("https://other.example:8443/placement/"),
            "https://other.example:8443/placement/"
        );
        assert_eq!(upstream_url("/v3#x"), "/v3?<redacted>");
        assert_eq!(upstream_url("/a\u{1b}[2Jb"), "/a [2Jb");
        assert!(upstream_url(&"x".repeat(100_000)).len() <= UPSTREAM_TEXT_LIMIT + 3);
    }

    fn redactor(secrets: &[(&str, SecretKind)]) -> Redactor {
        let mut redactor = Redactor::new();
        for (secret, kind) in secrets {
            redactor.add(secret, *kind);
        }
        redactor
    }

    #[test]
    fn url_user_info_is_removed_whatever_the_host_or_encoding() {
        let r = Redactor::new();
        for (text, expected) in [
            (
                "cannot reach http://admin:PW@keystone:5000/v3 now",
                "cannot reach http://<redacted>@keystone:5000/v3 now",
            ),
            (
                "https://us%40er:p%2Fw%3Ax@[fd00::1]:8778/x?y=1",
                "https://<redacted>@[fd00::1]:8778/x?y=1",
            ),
            ("http://admin:p@ss@host/", "http://<redacted>@host/"),
            ("http://token@h", "http://<redacted>@h"),
            (
                "\"http://a:b@h\",\"http://c:d@h2\"",
                "\"http://<redacted>@h\",\"http://<redacted>@h2\"",
            ),
            // Not user info: an @ after the path, or none.
            ("http://h/v3?mail=a@b", "http://h/v3?mail=a@b"),
            ("http://[::1]:5000/v3", "http://[::1]:5000/v3"),
        ] {
            assert_eq!(r.redact(text), expected, "{text}");
        }
        // Redacting again changes nothing.
        let once = r.redact("http://a:b@h/");
        assert_eq!(r.redact(&once), once);
    }

    #[test]
    fn secret_headers_are_removed_as_lines_json_members_and_dict_entries() {
        let r = Redactor::new();
        let echo = "POST /v3/auth/tokens HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Auth-Token: gAAAAAB-tok\r\nauthorization: Basic YWRtaW46UFc=\r\nAccept: */*\r\n";
        let redacted = r.redact(echo);
        assert!(!redacted.contains("gAAAAAB-tok"), "{redacted}");
        assert!(!redacted.contains("YWRtaW46UFc"), "{redacted}");
        assert!(redacted.contains("Host: 127.0.0.1"), "{redacted}");
        assert!(redacted.contains("Accept: */*"), "{redacted}");
        assert_eq!(
            r.redact(r#"{"headers": {"X-Subject-Token": "abc", "Via": "x"}}"#),
            r#"{"headers": {"X-Subject-Token": "<redacted>", "Via": "x"}}"#
        );
        assert_eq!(
            r.redact("{'x-auth-token': 'abc', 'accept': 'json'}"),
            "{'x-auth-token': '<redacted>', 'accept': 'json'}"
        );
        // The word alone is not a header.
        assert_eq!(
            r.redact("Authorization failed for user x"),
            "Authorization failed for user x"
        );
    }

    #[test]
    fn known_secrets_are_removed_as_substrings_and_in_their_echo_forms() {
        let r = redactor(&[
            ("pa\"ss/w@rd", SecretKind::Credential),
            ("gAAAAABtoken", SecretKind::Token),
        ]);
        assert_eq!(
            r.redact("xxpa\"ss/w@rdyy and gAAAAABtokenzz"),
            "xx<redacted>yy and <redacted>zz"
        );
        // As a server echoing a JSON request body shows it, and percent-encoded.
        assert_eq!(
            r.redact(r#"{"password": "pa\"ss/w@rd"}"#),
            r#"{"password": "<redacted>"}"#
        );
        assert_eq!(r.redact("p=pa%22ss%2Fw%40rd&"), "p=<redacted>&");
        assert_eq!(r.redact("p=pa%22ss%2fw%40rd&"), "p=<redacted>&");
    }

    #[test]
    fn overlapping_secrets_leave_no_part_behind() {
        let r = redactor(&[
            ("abcd", SecretKind::Credential),
            ("cdef", SecretKind::Credential),
            ("xyx", SecretKind::Credential),
        ]);
        assert_eq!(r.redact("1abcdef2"), "1<redacted>2");
        // Overlapping occurrences of one secret.
        assert_eq!(r.redact("-xyxyx-"), "-<redacted>-");
        // One secret inside another.
        let r = redactor(&[
            ("secret", SecretKind::Credential),
            ("my-secret-value", SecretKind::Credential),
        ]);
        assert_eq!(r.redact("[my-secret-value]"), "[<redacted>]");
    }

    #[test]
    fn an_empty_secret_redacts_nothing() {
        let r = redactor(&[("", SecretKind::Credential), ("", SecretKind::Token)]);
        assert_eq!(r.redact("plain text"), "plain text");
        assert_eq!(r.redact(""), "");
    }

    #[test]
    fn only_the_latest_tokens_are_remembered() {
        let mut r = Redactor::new();
        for n in 0..REMEMBERED_TOKENS + 3 {
            r.add(&format!("token-number-{n:03}"), SecretKind::Token);
        }
        assert_eq!(r.tokens.len(), REMEMBERED_TOKENS);
        assert_eq!(r.redact("token-number-000"), "token-number-000");
        let last = format!("token-number-{:03}", REMEMBERED_TOKENS + 2);
        assert_eq!(r.redact(&last), REDACTED);
        r.add("credential-stays", SecretKind::Credential);
        assert!(!format!("{r:?}").contains("credential-stays"));
    }

    #[test]
    fn upstream_text_is_redacted_before_it_is_cut() {
        // A secret straddling the final cut: redacting first leaves no prefix of it.
        let secret = "Z".repeat(40);
        let r = redactor(&[(secret.as_str(), SecretKind::Token)]);
        let body = format!("{}{secret}", "a".repeat(UPSTREAM_TEXT_LIMIT - 10));
        let text = upstream_text_with(&r, &body);
        assert!(!text.contains('Z'), "{text}");
        assert!(text.len() <= UPSTREAM_TEXT_LIMIT + 3);
    }

    #[test]
    fn a_secret_across_the_redaction_window_leaves_no_prefix() {
        let secret = "Z".repeat(40);
        let r = redactor(&[(secret.as_str(), SecretKind::Token)]);
        // Whitespace collapses to nothing, so the window's tail would be kept.
        for shift in 0..=secret.len() {
            let body = format!(
                "{}{}{secret}{}",
                "x".repeat(10),
                " ".repeat(UPSTREAM_WINDOW + secret.len() - 10 - shift),
                "y".repeat(10_000)
            );
            let text = upstream_text_with(&r, &body);
            assert!(!text.contains('Z'), "shift {shift}: {text}");
            assert!(text.ends_with("..."), "{text}");
        }
        // A megabyte body costs one window of work and gives the bounded text.
        let big = "a".repeat(1 << 20);
        assert_eq!(upstream_text_with(&r, &big).len(), UPSTREAM_TEXT_LIMIT + 3);
    }

    #[test]
    fn upstream_text_loses_control_characters_and_is_cut_on_a_char_boundary() {
        assert_eq!(
            bounded_one_line("a\u{1b}[31mred\r\nline\u{202E}two\u{7}", false),
            "a [31mred line two"
        );
        let long = "é".repeat(UPSTREAM_TEXT_LIMIT);
        let cut = bounded_one_line(&long, false);
        assert!(cut.ends_with("..."));
        assert!(cut.len() <= UPSTREAM_TEXT_LIMIT + 3);
    }

    #[test]
    fn a_secret_url_shows_no_user_info_and_registers_it() {
        let url = SecretUrl::new("http://admin:Pw%21-url-7391@[::1]:5000/v3");
        assert_eq!(url.to_string(), "http://<redacted>@[::1]:5000/v3");
        assert!(!format!("{url:?}").contains("Pw"));
        assert_eq!(url.expose(), "http://admin:Pw%21-url-7391@[::1]:5000/v3");
        // The decoded password is now known wherever it appears.
        assert_eq!(redact("echo: Pw!-url-7391."), "echo: <redacted>.");
        // A password with a raw slash defeats URL parsing but not the registration.
        let _ = SecretUrl::new("http://admin:raw/slash-4417@host/v3");
        assert!(
            !redact("expected an http(s) URL, got \"http://admin:raw/slash-4417@host/v3\"")
                .contains("raw/slash-4417")
        );
    }

    #[test]
    fn log_events_are_written_redacted_and_whole() {
        use std::io::Write;
        use std::sync::{Arc, Mutex};
        use tracing_subscriber::fmt::MakeWriter;

        #[derive(Clone, Default)]
        struct Sink(Arc<Mutex<Vec<u8>>>);
        impl Write for Sink {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        impl<'a> MakeWriter<'a> for Sink {
            type Writer = Sink;
            fn make_writer(&'a self) -> Sink {
                self.clone()
            }
        }

        register("log-secret-8812", SecretKind::Credential);
        let sink = Sink::default();
        let writer = RedactingWriter(sink.clone());
        {
            let mut event = writer.make_writer();
            // A secret split over two writes is still found.
            event
                .write_all(b"level=info url=http://u:p@h/ msg=log-sec")
                .unwrap();
            event.write_all(b"ret-8812\n").unwrap();
            assert!(
                sink.0.lock().unwrap().is_empty(),
                "written before the event ended"
            );
        }
        let written = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        assert_eq!(
            written,
            "level=info url=http://<redacted>@h/ msg=<redacted>\n"
        );
    }

    #[test]
    fn percent_decoding_keeps_invalid_escapes() {
        assert_eq!(percent_decode("a%41%4g%"), "aA%4g%");
        assert_eq!(percent_decode("%e2%82%ac"), "€");
    }
}
