//! The listen address: `:PORT` (all interfaces, as every Prometheus exporter accepts),
//! `IP:PORT`, `[IPv6]:PORT` or `HOST:PORT`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use tokio::net::{TcpListener, TcpSocket};

use crate::error::{Error, Result};

/// A parsed `--listen` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenAddr {
    /// `:PORT`: every interface, IPv6 and IPv4 where the host has both.
    Any(u16),
    /// An IP literal and port.
    Ip(SocketAddr),
    /// A host name, resolved when binding.
    Host(String, u16),
}

const EXPECTED: &str =
    "expected :PORT (all interfaces), HOST:PORT, IP:PORT or [IPv6]:PORT, e.g. :9184 or 127.0.0.1:9184";

impl ListenAddr {
    /// Parses a `--listen` value; the error names what is wrong and what is expected.
    pub fn parse(s: &str) -> Result<ListenAddr, String> {
        let bad = |why: &str| format!("--listen {s:?}: {why}; {EXPECTED}");
        let Some((host, port)) = s.rsplit_once(':') else { return Err(bad("no port")) };
        let port: u16 =
            port.parse().map_err(|_| bad(&format!("port {port:?} is not a number from 0 to 65535")))?;
        if host.is_empty() {
            return Ok(ListenAddr::Any(port));
        }
        if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            let ip: Ipv6Addr = v6.parse().map_err(|_| bad(&format!("{v6:?} is not an IPv6 address")))?;
            return Ok(ListenAddr::Ip(SocketAddr::new(IpAddr::V6(ip), port)));
        }
        if host.contains(':') {
            return Err(bad("an IPv6 address needs brackets"));
        }
        if let Ok(ip) = host.parse::<Ipv4Addr>() {
            return Ok(ListenAddr::Ip(SocketAddr::new(IpAddr::V4(ip), port)));
        }
        let label_ok = |l: &str| {
            !l.is_empty() && l.len() <= 63 && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        };
        if host.len() > 253
            || !host.split('.').all(label_ok)
            || host.chars().all(|c| c.is_ascii_digit() || c == '.')
        {
            return Err(bad(&format!("{host:?} is neither an IP address nor a host name")));
        }
        Ok(ListenAddr::Host(host.to_string(), port))
    }

    /// Binds it. `:PORT` binds `[::]` (dual stack) and falls back to `0.0.0.0` on hosts
    /// without IPv6.
    pub async fn bind(&self, shown: &str) -> Result<TcpListener> {
        let err = |source| Error::Bind { addr: shown.to_string(), source };
        match self {
            ListenAddr::Any(port) => {
                match listen_on(SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), *port)) {
                    Ok(l) => Ok(l),
                    Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => Err(err(e)),
                    Err(_) => {
                        listen_on(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), *port)).map_err(err)
                    }
                }
            }
            ListenAddr::Ip(a) => listen_on(*a).map_err(err),
            ListenAddr::Host(h, port) => {
                let mut last = None;
                for sa in tokio::net::lookup_host((h.as_str(), *port)).await.map_err(err)? {
                    match listen_on(sa) {
                        Ok(l) => return Ok(l),
                        Err(e) => last = Some(e),
                    }
                }
                Err(err(last.unwrap_or_else(|| std::io::Error::other("the address resolved to nothing"))))
            }
        }
    }
}

/// Kernel send buffer of every connection (inherited from the listening socket): what a
/// client that stops reading can pin in kernel memory is this, not the whole exposition.
const SEND_BUFFER: u32 = 256 * 1024;

/// A listening socket on `sa` with the bounded send buffer.
fn listen_on(sa: SocketAddr) -> std::io::Result<TcpListener> {
    let sock = if sa.is_ipv4() { TcpSocket::new_v4() } else { TcpSocket::new_v6() }?;
    sock.set_reuseaddr(true)?;
    sock.set_send_buffer_size(SEND_BUFFER)?;
    sock.bind(sa)?;
    sock.listen(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_every_exporter_accepts() {
        assert_eq!(ListenAddr::parse(":9184"), Ok(ListenAddr::Any(9184)));
        assert_eq!(ListenAddr::parse("[::]:9184"), Ok(ListenAddr::Ip("[::]:9184".parse().unwrap())));
        assert_eq!(
            ListenAddr::parse("127.0.0.1:9184"),
            Ok(ListenAddr::Ip("127.0.0.1:9184".parse().unwrap()))
        );
        assert_eq!(ListenAddr::parse("0.0.0.0:1"), Ok(ListenAddr::Ip("0.0.0.0:1".parse().unwrap())));
        assert_eq!(ListenAddr::parse("localhost:9184"), Ok(ListenAddr::Host("localhost".into(), 9184)));
    }

    #[test]
    fn bad_addresses_say_what_is_wrong() {
        for (s, why) in [
            ("9184", "no port"),
            (":http", "not a number"),
            (":65536", "not a number"),
            ("::1:9184", "needs brackets"),
            ("[::x]:1", "not an IPv6 address"),
            ("999.1.1.1:1", "neither an IP address nor a host name"),
            ("my_host:1", "neither"),
        ] {
            let e = ListenAddr::parse(s).unwrap_err();
            assert!(e.contains(why) && e.contains("e.g. :9184"), "{s}: {e}");
        }
    }

    #[tokio::test]
    async fn binds_each_form_on_loopback_and_all_interfaces() {
        for s in [":0", "127.0.0.1:0", "localhost:0"] {
            let l = ListenAddr::parse(s).unwrap().bind(s).await.unwrap();
            assert_ne!(l.local_addr().unwrap().port(), 0, "{s}");
        }
        // `:PORT` accepts IPv4 connections (dual stack or the 0.0.0.0 fallback).
        let l = ListenAddr::parse(":0").unwrap().bind(":0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let (c, a) = tokio::join!(tokio::net::TcpStream::connect(("127.0.0.1", port)), l.accept());
        assert!(c.is_ok() && a.is_ok());
        let held = ListenAddr::parse("127.0.0.1:0").unwrap().bind("x").await.unwrap();
        let taken = held.local_addr().unwrap().to_string();
        let e = ListenAddr::parse(&taken).unwrap().bind(&taken).await.unwrap_err().to_string();
        assert!(e.starts_with(&format!("cannot listen on {taken}: ")), "{e}");
    }
}
