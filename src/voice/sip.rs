//! SIP messages as they travel over a WebSocket (RFC 7118): one message per frame, so no
//! stream framing, and a reliable transport, so no retransmission timers. Just what the web-call
//! gateway needs to read and write: start line, headers (compact forms too), body.
//!
//! Our own code rather than rsipstack: its WebSocket transport is a listener of its own on its own
//! port, with the transaction and dialog layers of a general user agent; the gateway answers one
//! call per browser on the API's own port (one address, one TLS proxy in front), and over a reliable
//! transport a UAS needs no more than the messages themselves.

use std::fmt::Write;

#[derive(Debug, Clone, PartialEq)]
pub enum StartLine {
    Request { method: String, uri: String },
    Response { code: u16, reason: String },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub start: StartLine,
    /// In order, names as written.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// Compact header forms (RFC 3261 §7.3.3) to their full names.
fn full_name(name: &str) -> &str {
    match name {
        "v" | "V" => "Via",
        "f" | "F" => "From",
        "t" | "T" => "To",
        "i" | "I" => "Call-ID",
        "m" | "M" => "Contact",
        "l" | "L" => "Content-Length",
        "c" | "C" => "Content-Type",
        "k" | "K" => "Supported",
        _ => name,
    }
}

/// Longest message accepted (an INVITE with a browser's SDP is 3–6 KiB).
pub const MAX_MESSAGE: usize = 64 * 1024;

impl Message {
    pub fn parse(text: &str) -> Result<Message, String> {
        if text.len() > MAX_MESSAGE {
            return Err("message too long".into());
        }
        let (head, body) = match text.find("\r\n\r\n") {
            Some(i) => (&text[..i], &text[i + 4..]),
            None => (text.trim_end(), ""),
        };
        let mut lines = head.split("\r\n");
        let first = lines.next().unwrap_or_default();
        let start = if let Some(rest) = first.strip_prefix("SIP/2.0 ") {
            let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
            StartLine::Response {
                code: code.parse().map_err(|_| format!("bad status line `{first}`"))?,
                reason: reason.to_owned(),
            }
        } else {
            let mut parts = first.split(' ');
            match (parts.next(), parts.next(), parts.next()) {
                (Some(method), Some(uri), Some("SIP/2.0")) if !method.is_empty() => StartLine::Request {
                    method: method.to_owned(),
                    uri: uri.to_owned(),
                },
                _ => return Err(format!("bad request line `{first}`")),
            }
        };
        let mut headers: Vec<(String, String)> = Vec::new();
        for line in lines {
            if line.starts_with(' ') || line.starts_with('\t') {
                // A folded continuation of the previous header.
                if let Some(last) = headers.last_mut() {
                    last.1.push(' ');
                    last.1.push_str(line.trim());
                }
                continue;
            }
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| format!("bad header line `{line}`"))?;
            headers.push((full_name(name.trim()).to_owned(), value.trim().to_owned()));
        }
        let mut m = Message {
            start,
            headers,
            body: body.to_owned(),
        };
        if let Some(len) = m.header("Content-Length").and_then(|l| l.parse::<usize>().ok()) {
            if len <= m.body.len() && m.body.is_char_boundary(len) {
                m.body.truncate(len);
            }
        }
        Ok(m)
    }

    pub fn request(method: &str, uri: &str) -> Message {
        Message {
            start: StartLine::Request {
                method: method.into(),
                uri: uri.into(),
            },
            headers: Vec::new(),
            body: String::new(),
        }
    }

    pub fn method(&self) -> Option<&str> {
        match &self.start {
            StartLine::Request { method, .. } => Some(method),
            StartLine::Response { .. } => None,
        }
    }

    pub fn uri(&self) -> Option<&str> {
        match &self.start {
            StartLine::Request { uri, .. } => Some(uri),
            StartLine::Response { .. } => None,
        }
    }

    pub fn code(&self) -> Option<u16> {
        match &self.start {
            StartLine::Response { code, .. } => Some(*code),
            StartLine::Request { .. } => None,
        }
    }

    /// A response's reason phrase.
    pub fn reason(&self) -> Option<&str> {
        match &self.start {
            StartLine::Response { reason, .. } => Some(reason),
            StartLine::Request { .. } => None,
        }
    }

    /// The first header of that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn with(mut self, name: &str, value: impl Into<String>) -> Message {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    pub fn with_body(mut self, content_type: &str, body: String) -> Message {
        self.headers.push(("Content-Type".into(), content_type.into()));
        self.body = body;
        self
    }

    /// A response to this request: its Via headers, From, To (with `to_tag` added when it has
    /// none), Call-ID and CSeq.
    pub fn response(&self, code: u16, reason: &str, to_tag: Option<&str>) -> Message {
        let mut headers = Vec::new();
        for (name, value) in &self.headers {
            let keep = ["Via", "From", "Call-ID", "CSeq"]
                .iter()
                .any(|h| name.eq_ignore_ascii_case(h));
            if keep {
                headers.push((name.clone(), value.clone()));
            } else if name.eq_ignore_ascii_case("To") {
                let value = match to_tag {
                    Some(tag) if param(value, "tag").is_none() => format!("{value};tag={tag}"),
                    _ => value.clone(),
                };
                headers.push(("To".into(), value));
            }
        }
        Message {
            start: StartLine::Response {
                code,
                reason: reason.into(),
            },
            headers,
            body: String::new(),
        }
    }

    /// The CSeq number and method.
    pub fn cseq(&self) -> Option<(u32, &str)> {
        let (n, m) = self.header("CSeq")?.split_once(' ')?;
        Some((n.trim().parse().ok()?, m.trim()))
    }
}

impl std::fmt::Display for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut out = String::new();
        match &self.start {
            StartLine::Request { method, uri } => {
                let _ = write!(out, "{method} {uri} SIP/2.0\r\n");
            }
            StartLine::Response { code, reason } => {
                let _ = write!(out, "SIP/2.0 {code} {reason}\r\n");
            }
        }
        for (name, value) in &self.headers {
            if !name.eq_ignore_ascii_case("Content-Length") {
                let _ = write!(out, "{name}: {value}\r\n");
            }
        }
        let _ = write!(out, "Content-Length: {}\r\n\r\n{}", self.body.len(), self.body);
        f.write_str(&out)
    }
}

/// A `;name=value` parameter of a header value (outside any `<…>`).
pub fn param<'a>(value: &'a str, name: &str) -> Option<&'a str> {
    let after = value.rfind('>').map_or(value, |i| &value[i + 1..]);
    after.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// The address inside a name-addr (`"Bob" <sip:bob@x>;tag=1` → `sip:bob@x`), or the bare URI.
pub fn addr(value: &str) -> &str {
    match (value.find('<'), value.find('>')) {
        (Some(a), Some(b)) if a < b => &value[a + 1..b],
        _ => value.split(';').next().unwrap_or(value).trim(),
    }
}

/// The user part of a SIP URI (`sip:user@host;params` → `user`).
pub fn uri_user(uri: &str) -> Option<&str> {
    let rest = uri.strip_prefix("sip:").or_else(|| uri.strip_prefix("sips:"))?;
    let (user, _) = rest.split_once('@')?;
    Some(user)
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVITE: &str = "INVITE sip:0193@voxd.test SIP/2.0\r\n\
        Via: SIP/2.0/WSS abc.invalid;branch=z9hG4bK1\r\n\
        v: SIP/2.0/WSS def.invalid;branch=z9hG4bK0\r\n\
        Max-Forwards: 69\r\n\
        To: <sip:0193@voxd.test>\r\n\
        f: \"Web\" <sip:caller@voxd.test>;tag=xyz\r\n\
        Call-ID: c1\r\n\
        CSeq: 2 INVITE\r\n\
        Content-Type: application/sdp\r\n\
        Content-Length: 5\r\n\r\nv=0\r\nEXTRA";

    #[test]
    fn parses_requests_and_builds_responses() {
        let m = Message::parse(INVITE).unwrap();
        assert_eq!(m.method(), Some("INVITE"));
        assert_eq!(uri_user(m.uri().unwrap()), Some("0193"));
        assert_eq!(m.header("from"), Some("\"Web\" <sip:caller@voxd.test>;tag=xyz"));
        assert_eq!(param(m.header("From").unwrap(), "tag"), Some("xyz"));
        assert_eq!(addr(m.header("From").unwrap()), "sip:caller@voxd.test");
        assert_eq!(m.body, "v=0\r\n", "the body is cut at Content-Length");
        assert_eq!(m.cseq(), Some((2, "INVITE")));
        let r = m.response(200, "OK", Some("t1"));
        let text = r.to_string();
        assert!(text.starts_with("SIP/2.0 200 OK\r\n"));
        assert_eq!(text.matches("Via: ").count(), 2, "{text}");
        assert!(text.contains("To: <sip:0193@voxd.test>;tag=t1\r\n"));
        assert!(text.ends_with("Content-Length: 0\r\n\r\n"));
        let back = Message::parse(&text).unwrap();
        assert_eq!(back.code(), Some(200));
    }

    #[test]
    fn refuses_what_is_not_sip() {
        assert!(Message::parse("hello").is_err());
        assert!(Message::parse("GET / HTTP/1.1\r\n\r\n").is_err());
        assert!(Message::parse("INVITE sip:x SIP/2.0\r\nno colon here\r\n\r\n").is_err());
        assert!(Message::parse(&"x".repeat(MAX_MESSAGE + 1)).is_err());
    }
}
