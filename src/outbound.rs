//! Outbound HTTP to addresses users configure (tool steps, automation steps, event webhooks): the
//! one place that decides which addresses may be reached. Unless the operator allows private
//! networks, a request may not reach loopback, private, link-local (cloud metadata), shared or
//! reserved addresses, spelled directly, embedded in an IPv6 address (mapped, compatible, NAT64,
//! 6to4, Teredo), or behind a name that resolves to them. Redirects are not followed, so a public
//! URL cannot bounce inside.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Said wherever a private target is refused, so the operator knows the way out.
pub const PRIVATE_HINT: &str = "set allow_private_network to allow it";

fn v4_is_private(v4: Ipv4Addr) -> bool {
    let [a, b, c, _] = v4.octets();
    v4.is_private()
        || v4.is_loopback()
        || v4.is_link_local()
        || v4.is_broadcast()
        || v4.is_multicast()
        || v4.is_documentation()
        || a == 0 // "this network", 0.0.0.0 included
        || a == 100 && (64..128).contains(&b) // shared address space (carrier-grade NAT)
        || a == 192 && b == 0 && c == 0 // IETF protocol assignments
        || a == 198 && (18..20).contains(&b) // benchmarking
        || a >= 240 // reserved
}

/// The IPv4 address an IPv6 address carries, in each form that routes to it.
fn embedded_v4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = v6.segments();
    let low = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    match s {
        // IPv4-mapped ::ffff:a.b.c.d and IPv4-compatible ::a.b.c.d (deprecated, still parsed).
        [0, 0, 0, 0, 0, 0xffff, _, _] | [0, 0, 0, 0, 0, 0, _, _] => Some(low),
        // NAT64 well-known prefix 64:ff9b::/96.
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some(low),
        // 6to4 2002:AABB:CCDD::/48.
        [0x2002, hi, lo, ..] => Some(Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8)),
        _ => None,
    }
}

/// Whether an address is one outbound requests must not reach by default.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4_is_private(v4),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local
                || (s[0] & 0xffc0) == 0xfe80 // link local
                || (s[0] & 0xffc0) == 0xfec0 // site local (deprecated)
                || (s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1) // local-use NAT64 64:ff9b:1::/48
                || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
                || (s[0] == 0x0100 && s[1..4] == [0, 0, 0]) // discard-only 100::/64
                // Teredo 2001:0::/32: the server's IPv4 and the client's (inverted).
                || (s[0] == 0x2001 && s[1] == 0 && {
                    let server = Ipv4Addr::new((s[2] >> 8) as u8, s[2] as u8, (s[3] >> 8) as u8, s[3] as u8);
                    let client = Ipv4Addr::from(!((u32::from(s[6]) << 16) | u32::from(s[7])));
                    v4_is_private(server) || v4_is_private(client)
                })
                || embedded_v4(v6).is_some_and(v4_is_private)
        }
    }
}

/// An HTTP client for user-configured targets: no redirects, and unless `allow_private`, names
/// that resolve only to private addresses are refused at connect time.
pub fn client(allow_private: bool, timeout: Duration) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none());
    if !allow_private {
        builder = builder.dns_resolver(Arc::new(PublicOnly));
    }
    builder.build().expect("HTTP client")
}

/// Parses an http(s) URL and, unless `allow_private`, refuses private IP literals (names are
/// checked by [`client`]'s resolver when the request is made).
pub fn check_url(url: &str, allow_private: bool) -> Result<reqwest::Url, String> {
    let parsed = match reqwest::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => u,
        _ => return Err(format!("`{url}` is not an http(s) URL")),
    };
    if !allow_private {
        let literal = match parsed.host() {
            Some(url::Host::Ipv4(v4)) => Some(IpAddr::V4(v4)),
            Some(url::Host::Ipv6(v6)) => Some(IpAddr::V6(v6)),
            _ => None,
        };
        if literal.is_some_and(is_private) {
            return Err(format!("{url} is a private address ({PRIVATE_HINT})"));
        }
        if parsed.host_str().is_some_and(is_loopback_name) {
            return Err(format!(
                "{} resolves to a private address ({PRIVATE_HINT})",
                parsed.host_str().unwrap_or_default().trim_end_matches('.')
            ));
        }
    }
    Ok(parsed)
}

/// `localhost` and its subdomains always mean this machine (RFC 6761), whatever a resolver says.
fn is_loopback_name(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    host == "localhost" || host.ends_with(".localhost")
}

/// Checks a URL a team saves (an endpoint, a step) before it is ever used: a private literal or
/// loopback name is refused at once, naming the setting. A URL whose host is a `{{template}}` is
/// checked when it is used.
pub fn check_saved_url(url: &str, allow_private: bool) -> Result<(), String> {
    let authority = url.split("://").nth(1).unwrap_or(url);
    let host = authority.split(['/', '?', '#']).next().unwrap_or("");
    if host.contains("{{") {
        return Ok(());
    }
    let concrete = url.split("{{").next().unwrap_or(url);
    check_url(concrete, allow_private).map(|_| ())
}

/// Why a request did not get an answer.
#[derive(Debug, Clone, PartialEq)]
pub enum SendError {
    /// The target is not allowed (a private address, a bad URL): trying again cannot help.
    Refused(String),
    /// Network trouble, a timeout: worth another try later.
    Failed(String),
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Refused(e) | SendError::Failed(e) => f.write_str(e),
        }
    }
}

/// Sends a request built on [`client`], telling a refused target from a network failure.
pub async fn send(req: reqwest::RequestBuilder) -> Result<reqwest::Response, SendError> {
    req.send().await.map_err(|e| {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
        while let Some(s) = source {
            if let Some(private) = s.downcast_ref::<PrivateName>() {
                return SendError::Refused(private.to_string());
            }
            source = s.source();
        }
        SendError::Failed(format!("request failed: {e}"))
    })
}

/// A name that resolves to no address the request may reach.
#[derive(Debug)]
struct PrivateName(String);

impl std::fmt::Display for PrivateName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} resolves to a private address ({PRIVATE_HINT})", self.0)
    }
}

impl std::error::Error for PrivateName {}

/// Resolves names and drops private addresses, so the connection can only go to public ones.
struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            if is_loopback_name(name.as_str()) {
                return Err(Box::new(PrivateName(name.as_str().trim_end_matches('.').to_owned())) as _);
            }
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0))
                .await?
                .filter(|a| !is_private(a.ip()))
                .collect();
            if addrs.is_empty() {
                return Err(Box::new(PrivateName(name.as_str().trim_end_matches('.').to_owned())) as _);
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_addresses_are_recognised_in_every_spelling() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "0.1.2.3",
            "192.0.0.8",
            "198.18.0.1",
            "240.0.0.1",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "::ffff:10.0.0.1",
            "::ffff:127.0.0.1",
            "::127.0.0.1",
            "::7f00:1",
            "64:ff9b::7f00:1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1::8.8.8.8",
            "2002:7f00:1::",
            "2002:a9fe:a9fe::1",
            "2002:c0a8:0101::1",
            // Teredo with a loopback client (inverted 127.0.0.1 is 80ff:fffe).
            "2001:0:4136:e378:8000:63bf:80ff:fffe",
            // Teredo with a private server.
            "2001:0:0a00:0001::1",
            "2001:db8::1",
        ] {
            assert!(is_private(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:0808:0808::1",
            "2001:0:4136:e378:8000:63bf:f7f7:f7f7",
        ] {
            assert!(!is_private(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn literals_in_urls_are_refused_with_the_hint() {
        for url in [
            "http://[::127.0.0.1]/",
            "http://[64:ff9b::7f00:1]/",
            "http://[2002:7f00:1::]/",
            "http://0x7f000001/",
            "http://2130706433/",
            "http://127.1/",
            "http://[::ffff:7f00:1]/",
        ] {
            let e = check_url(url, false).unwrap_err();
            assert!(e.contains(PRIVATE_HINT), "{url}: {e}");
            assert!(check_url(url, true).is_ok());
        }
        for url in ["http://localhost/", "http://LOCALHOST./x", "http://api.localhost:8080/"] {
            assert!(check_url(url, false).unwrap_err().contains(PRIVATE_HINT), "{url}");
        }
        assert!(check_url("https://example.com/x", false).is_ok());
        assert!(check_url("ftp://example.com/", false).is_err());
    }

    #[tokio::test]
    async fn names_resolving_to_private_addresses_are_refused_not_failed() {
        let c = client(false, Duration::from_secs(2));
        for url in ["http://localhost:9/x", "http://localhost.:9/x"] {
            match send(c.get(url)).await {
                Err(SendError::Refused(e)) => {
                    assert_eq!(e, format!("localhost resolves to a private address ({PRIVATE_HINT})"))
                }
                other => panic!("{url}: {other:?}"),
            }
        }
        // A name found by resolving: this machine's own, when it resolves only to private addresses.
        let host = std::fs::read_to_string("/etc/hostname")
            .unwrap_or_default()
            .trim()
            .to_owned();
        let resolved: Vec<IpAddr> = match tokio::net::lookup_host((host.as_str(), 0)).await {
            Ok(a) => a.map(|a| a.ip()).collect(),
            Err(_) => Vec::new(),
        };
        if !resolved.is_empty() && resolved.iter().all(|ip| is_private(*ip)) {
            let got = send(c.get(format!("http://{host}:9/x"))).await;
            assert_eq!(
                got.unwrap_err(),
                SendError::Refused(format!("{host} resolves to a private address ({PRIVATE_HINT})"))
            );
        }
        // Allowed, the same name is merely unreachable (nothing listens on port 9): a failure.
        let open = client(true, Duration::from_secs(2));
        assert!(matches!(
            send(open.get("http://localhost:9/x")).await,
            Err(SendError::Failed(_))
        ));
    }
}
