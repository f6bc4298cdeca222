//! The rules every platform URL must meet: at registration (admin API) and on every
//! URL the tool itself fetches (the platform's key set and each redirect on the way).
//!
//! One function decides, [`UrlPolicy::check`]:
//! - `https` only; plain `http` only on a loopback host, and only where loopback is
//!   allowed;
//! - a host, no user name or password (`user:pass@`), no fragment;
//! - no IP address that is not a public unicast address: private (10/8, 172.16/12,
//!   192.168/16, fc00::/7), link-local (169.254/16 — the cloud metadata services —
//!   fe80::/10), shared (100.64/10), unspecified (0.0.0.0/8, ::), multicast, broadcast,
//!   documentation, benchmarking or reserved ranges; IPv6 forms that carry an IPv4
//!   address (IPv4-mapped `::ffff:a.b.c.d`, IPv4-compatible, NAT64 `64:ff9b::/96`,
//!   6to4 `2002::/16`) are judged by the IPv4 address inside;
//! - loopback (127/8, ::1, `localhost`, `*.localhost`) only when the policy allows it:
//!   on the dev server always, on the Lambda functions only with the explicit opt-in
//!   `LTI_INSECURE_ALLOW_LOOPBACK_URLS=true` (on Lambda, 127.0.0.1 is the function's
//!   own sandbox, e.g. the Lambda Runtime API).
//!
//! The URL rules see the URL only. A *hostname* that resolves to a private address
//! cannot be judged from the URL (nor at registration: DNS answers change); the key
//! fetcher of the http crate checks the resolved addresses with
//! [`UrlPolicy::check_ip`] before it connects, which covers the fetch itself.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use url::{Host, Url};

/// Which URLs the tool accepts for a platform and fetches from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UrlPolicy {
    allow_loopback: bool,
}

/// Why an address is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    Loopback,
    NotPublic,
}

impl UrlPolicy {
    /// Public https URLs only: what the Lambda functions use.
    pub const STRICT: Self = Self {
        allow_loopback: false,
    };
    /// [`UrlPolicy::STRICT`], plus loopback hosts over http or https: the dev server,
    /// tests, and Lambda with `LTI_INSECURE_ALLOW_LOOPBACK_URLS=true`.
    pub const ALLOW_LOOPBACK: Self = Self {
        allow_loopback: true,
    };

    /// The policy, with loopback hosts allowed or not.
    pub fn new(allow_loopback: bool) -> Self {
        Self { allow_loopback }
    }

    /// True when loopback hosts are allowed.
    pub fn allows_loopback(&self) -> bool {
        self.allow_loopback
    }

    /// Parses `value` and applies [`UrlPolicy::check`].
    pub fn check_str(&self, value: &str) -> Result<Url, String> {
        let url = Url::parse(value).map_err(|_| "must be an absolute URL".to_string())?;
        self.check(&url)?;
        Ok(url)
    }

    /// The URL rules (see the module documentation); the error is a phrase for a
    /// field error, e.g. "must use https".
    pub fn check(&self, url: &Url) -> Result<(), String> {
        let scheme = url.scheme();
        if scheme != "https" && scheme != "http" {
            return Err("must be an https URL".into());
        }
        let Some(host) = url.host() else {
            return Err("must have a host".into());
        };
        if !url.username().is_empty() || url.password().is_some() {
            return Err("must not contain a user name or password".into());
        }
        if url.fragment().is_some() {
            return Err("must not have a fragment".into());
        }
        let refusal = match host {
            Host::Domain(name) => is_loopback_name(name).then_some(Refusal::Loopback),
            Host::Ipv4(ip) => ipv4_refusal(ip),
            Host::Ipv6(ip) => ipv6_refusal(ip),
        };
        match refusal {
            None if scheme == "http" => Err("must use https".into()),
            None => Ok(()),
            Some(Refusal::Loopback) if self.allow_loopback => Ok(()),
            Some(refusal) => Err(message(refusal).into()),
        }
    }

    /// The address rules alone, for an address a hostname resolved to.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), String> {
        let refusal = match ip {
            IpAddr::V4(ip) => ipv4_refusal(ip),
            IpAddr::V6(ip) => ipv6_refusal(ip),
        };
        match refusal {
            None => Ok(()),
            Some(Refusal::Loopback) if self.allow_loopback => Ok(()),
            Some(refusal) => Err(message(refusal).into()),
        }
    }
}

fn message(refusal: Refusal) -> &'static str {
    match refusal {
        Refusal::Loopback => {
            "must not point to this machine (loopback); only the dev server, or \
             LTI_INSECURE_ALLOW_LOOPBACK_URLS=true for local testing, allows it"
        }
        Refusal::NotPublic => {
            "must not point to a private, link-local, or otherwise non-public address"
        }
    }
}

/// True for hosts where plain http is acceptable (a developer's own machine).
pub fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(d)) => is_loopback_name(d),
        Some(Host::Ipv4(ip)) => ipv4_refusal(ip) == Some(Refusal::Loopback),
        Some(Host::Ipv6(ip)) => ipv6_refusal(ip) == Some(Refusal::Loopback),
        None => false,
    }
}

/// `localhost` and its subdomains (RFC 6761), with or without the final dot.
fn is_loopback_name(name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost" || name.ends_with(".localhost")
}

fn ipv4_refusal(ip: Ipv4Addr) -> Option<Refusal> {
    let [a, b, c, _] = ip.octets();
    if a == 127 {
        return Some(Refusal::Loopback);
    }
    let not_public = a == 0 // "this network"; 0.0.0.0 reaches the local host
        || a == 10
        || (a == 100 && (64..128).contains(&b)) // shared address space (carrier NAT)
        || (a == 169 && b == 254) // link-local: instance metadata services
        || (a == 172 && (16..32).contains(&b))
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2) // documentation
        || (a == 192 && b == 168)
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || (a == 198 && b == 51 && c == 100) // documentation
        || (a == 203 && b == 0 && c == 113) // documentation
        || a >= 224; // multicast, reserved, broadcast
    not_public.then_some(Refusal::NotPublic)
}

fn ipv6_refusal(ip: Ipv6Addr) -> Option<Refusal> {
    if ip.is_loopback() {
        return Some(Refusal::Loopback);
    }
    if ip.is_unspecified() {
        return Some(Refusal::NotPublic);
    }
    if let Some(v4) = ip.to_ipv4_mapped() {
        return ipv4_refusal(v4);
    }
    let s = ip.segments();
    let embedded_low =
        || Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    // IPv4-compatible (::a.b.c.d, deprecated) and NAT64 (64:ff9b::/96).
    if s[..6] == [0, 0, 0, 0, 0, 0] || s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return ipv4_refusal(embedded_low());
    }
    // 6to4: 2002:AABB:CCDD::/48 carries a.b.c.d.
    if s[0] == 0x2002 {
        let v4 = Ipv4Addr::new((s[1] >> 8) as u8, s[1] as u8, (s[2] >> 8) as u8, s[2] as u8);
        return ipv4_refusal(v4);
    }
    let not_public = (s[0] & 0xfe00) == 0xfc00 // unique local, fc00::/7
        || (s[0] & 0xffc0) == 0xfe80 // link-local, fe80::/10
        || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated), fec0::/10
        || (s[0] & 0xff00) == 0xff00 // multicast
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] == 0x0064 && s[1] == 0xff9b && s[2] == 1) // local-use NAT64
        || s[..4] == [0x0100, 0, 0, 0]; // discard-only
    not_public.then_some(Refusal::NotPublic)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(policy: UrlPolicy, url: &str) -> String {
        policy.check_str(url).expect_err(url)
    }

    #[test]
    fn public_https_urls_pass() {
        for url in [
            "https://moodle.example.edu/mod/lti/certs.php",
            "https://sso.canvaslms.com/api/lti/security/jwks?x=1",
            "https://8.8.8.8/jwks",
            "https://[2606:4700::1111]/jwks",
            "https://172.32.0.1/jwks",
            "https://100.128.0.1/jwks",
        ] {
            assert!(UrlPolicy::STRICT.check_str(url).is_ok(), "{url}");
        }
    }

    #[test]
    fn private_link_local_and_special_addresses_are_refused_in_every_spelling() {
        for url in [
            "https://169.254.169.254/latest/meta-data/",
            "http://169.254.169.254/",
            "https://2852039166/", // 169.254.169.254 as one number
            "https://169.254.169.254./",
            "https://0251.0376.0251.0376/", // octal
            "https://169.254.43518/",
            "https://0xa9.0xfe.0xa9.0xfe/",
            "https://10.0.0.1/jwks",
            "https://172.16.0.1/jwks",
            "https://172.31.255.255/jwks",
            "https://192.168.1.1/jwks",
            "https://100.64.0.1/jwks",
            "https://0.0.0.0/jwks",
            "https://0.1.2.3/jwks",
            "https://224.0.0.1/jwks",
            "https://255.255.255.255/jwks",
            "https://[::]/jwks",
            "https://[fc00::1]/jwks",
            "https://[fd00:ec2::254]/jwks",
            "https://[fe80::1]/jwks",
            "https://[ff02::1]/jwks",
            "https://[::ffff:169.254.169.254]/jwks",
            "https://[::ffff:10.0.0.1]/jwks",
            "https://[::a9fe:a9fe]/jwks",
            "https://[64:ff9b::a9fe:a9fe]/jwks",
            "https://[2002:a9fe:a9fe::1]/jwks",
        ] {
            let message = refused(UrlPolicy::ALLOW_LOOPBACK, url);
            assert!(message.contains("non-public"), "{url}: {message}");
        }
    }

    #[test]
    fn loopback_is_allowed_only_when_the_policy_says_so() {
        for url in [
            "http://127.0.0.1:3000/platform",
            "http://127.1.2.3/x",
            "http://localhost/x",
            "http://LOCALHOST./x",
            "http://lms.localhost/x",
            "https://[::1]/x",
            "http://[::ffff:127.0.0.1]/x",
        ] {
            assert!(UrlPolicy::ALLOW_LOOPBACK.check_str(url).is_ok(), "{url}");
            assert!(
                refused(UrlPolicy::STRICT, url).contains("LTI_INSECURE_ALLOW_LOOPBACK_URLS"),
                "{url}"
            );
        }
    }

    #[test]
    fn scheme_credentials_and_fragment() {
        let p = UrlPolicy::ALLOW_LOOPBACK;
        assert_eq!(refused(p, "http://lms.example.edu/x"), "must use https");
        assert_eq!(
            refused(p, "ftp://lms.example.edu/x"),
            "must be an https URL"
        );
        assert_eq!(refused(p, "lms.example.edu/x"), "must be an absolute URL");
        assert_eq!(
            refused(p, "https://lms.example.edu/x#k"),
            "must not have a fragment"
        );
        for url in [
            "https://user:pass@lms.example.edu/jwks",
            "https://user@lms.example.edu/jwks",
            "https://:pass@lms.example.edu/jwks",
            "http://u:p@127.0.0.1/jwks",
        ] {
            assert_eq!(
                refused(p, url),
                "must not contain a user name or password",
                "{url}"
            );
        }
    }

    #[test]
    fn resolved_addresses_follow_the_same_rules() {
        let strict = UrlPolicy::STRICT;
        assert!(strict
            .check_ip("93.184.216.34".parse().expect("ip"))
            .is_ok());
        assert!(strict
            .check_ip("169.254.169.254".parse().expect("ip"))
            .is_err());
        assert!(strict.check_ip("127.0.0.1".parse().expect("ip")).is_err());
        assert!(UrlPolicy::ALLOW_LOOPBACK
            .check_ip("::1".parse().expect("ip"))
            .is_ok());
        assert!(UrlPolicy::ALLOW_LOOPBACK
            .check_ip("fd00::1".parse().expect("ip"))
            .is_err());
    }
}
