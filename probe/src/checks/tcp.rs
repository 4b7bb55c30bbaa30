//! Check `tcp`: one non-blocking connect per target address, all at once, each bounded by
//! the plan's connect timeout (and the run's deadline), classified by the kernel's errno.
//! A connection that succeeds is closed at once without sending data.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use protocol::{Evidence, Target, TcpEvidence, TcpOutcome};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::time::Instant;

use super::pacing::ms;
use super::Outcome;
use crate::context::Ctx;
use crate::errqueue;

pub async fn run(ctx: Arc<Ctx>) -> Outcome {
    let resolved = futures::future::join_all(
        ctx.plan
            .targets
            .iter()
            .filter_map(|t| t.port.map(|port| (t, port)))
            .map(|(target, port)| resolve(&ctx, target, port)),
    )
    .await;
    let mut addresses: Vec<(&Target, SocketAddr)> = Vec::new();
    for r in resolved {
        match r {
            Ok(mut a) => addresses.append(&mut a),
            Err(unresolved) => ctx.emit(Evidence::Tcp(unresolved)),
        }
    }
    match ctx.plan.rounds.as_ref() {
        Some(rounds) => super::rounds::run(&ctx, rounds, addresses).await,
        None => {
            let connects = addresses.into_iter().map(|(target, address)| {
                let timeout =
                    Duration::from_millis(ctx.plan.connect_timeout_ms).min(ctx.remaining());
                let ctx = &ctx;
                async move {
                    let mut evidence = connect(target, address, timeout).await;
                    evidence.node_nat = node_nat(ctx, target, &evidence);
                    evidence
                }
            });
            for evidence in futures::future::join_all(connects).await {
                ctx.emit(Evidence::Tcp(evidence));
            }
        }
    }
    Outcome::Completed
}

/// The node's conntrack entry for a connect to a ClusterIP, in a node view (looked up right
/// after the connect, while the entry is fresh).
pub fn node_nat(ctx: &Ctx, target: &Target, t: &TcpEvidence) -> Option<protocol::NodeNat> {
    if target.role != protocol::TargetRole::ClusterIp {
        return None;
    }
    ctx.node_conntrack.as_ref()?.nat_of(t.local, t.address)
}

/// The addresses of a target, or the `unresolved` evidence saying why it has none.
async fn resolve<'t>(
    ctx: &Ctx,
    target: &'t Target,
    port: u16,
) -> Result<Vec<(&'t Target, SocketAddr)>, TcpEvidence> {
    match ctx.resolve_target(target).await {
        Ok(ips) => Ok(ips
            .into_iter()
            .map(|ip| (target, SocketAddr::new(ip, port)))
            .collect()),
        Err(why) => Err(TcpEvidence {
            target: target.label.clone(),
            // No address to show: the unspecified one with the target's port.
            address: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port),
            role: target.role.clone(),
            outcome: TcpOutcome::Unresolved.into(),
            latency_ms: 0.0,
            local: None,
            errno: None,
            message: Some(why),
            icmp: None,
            node_nat: None,
        }),
    }
}

/// Connect to `address`, waiting at most `timeout` for the handshake's outcome.
pub async fn connect(target: &Target, address: SocketAddr, timeout: Duration) -> TcpEvidence {
    let started = Instant::now();
    let mut evidence = TcpEvidence {
        target: target.label.clone(),
        address,
        role: target.role.clone(),
        outcome: TcpOutcome::Error.into(),
        latency_ms: 0.0,
        local: None,
        errno: None,
        message: None,
        icmp: None,
        node_nat: None,
    };
    let mut seen = Seen::default();
    let result = handshake(address, timeout, &mut seen).await;
    evidence.latency_ms = ms(started.elapsed());
    evidence.local = seen.local;
    evidence.icmp = seen.icmp;
    match result {
        Ok(Some(stream)) => {
            evidence.outcome = TcpOutcome::Ok.into();
            // Dropping the stream closes it: a FIN, no data.
            drop(stream);
        }
        Ok(None) => {
            evidence.outcome = TcpOutcome::Timeout.into();
            evidence.message = Some(format!(
                "no SYN-ACK, RST or ICMP error within {} ms",
                timeout.as_millis()
            ));
        }
        Err(e) => {
            evidence.outcome = classify(&e).into();
            evidence.errno = e.raw_os_error();
            evidence.message = Some(e.to_string());
        }
    }
    evidence
}

/// A connected stream to `address` for a check that talks over it (`app`): `Ok(None)` is a
/// timeout, an error is the connect's (classified by [`classify`]).
pub async fn open(
    address: SocketAddr,
    timeout: Duration,
) -> io::Result<Option<tokio::net::TcpStream>> {
    handshake(address, timeout, &mut Seen::default()).await
}

/// What the socket showed besides the outcome.
#[derive(Default)]
struct Seen {
    /// The source address, as soon as the kernel picked one.
    local: Option<SocketAddr>,
    /// The ICMP error that ended a failed connect, from the error queue.
    icmp: Option<protocol::ConnectIcmp>,
}

/// `Ok(None)` is a timeout.
async fn handshake(
    address: SocketAddr,
    timeout: Duration,
    seen: &mut Seen,
) -> io::Result<Option<tokio::net::TcpStream>> {
    let socket = Socket::new(
        Domain::for_address(address),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    // Without it an ICMP error is only an errno. Setting an option on a fresh socket of the
    // right family does not fail in practice; if it did, the evidence would merely lack
    // `icmp`, so the connect goes ahead either way.
    let _ = errqueue::enable(&socket, address.is_ipv6());
    socket.set_nonblocking(true)?;
    let connected_now = match socket.connect(&address.into()) {
        Ok(()) => true,
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => false,
        Err(e) => {
            // A local REJECT can answer within connect(2) itself.
            seen.local = bound_address(&socket);
            seen.icmp = errqueue::first_icmp(&socket);
            return Err(e);
        }
    };
    seen.local = bound_address(&socket);
    let stream = tokio::net::TcpStream::from_std(std::net::TcpStream::from(socket))?;
    if !connected_now {
        match tokio::time::timeout(timeout, stream.writable()).await {
            Err(_) => return Ok(None),
            Ok(ready) => ready?,
        }
        if let Some(e) = stream.take_error()? {
            seen.icmp = errqueue::first_icmp(&stream);
            return Err(e);
        }
        // Writable without a pending error but not connected would be odd; peer_addr says.
        stream.peer_addr()?;
    }
    Ok(Some(stream))
}

fn bound_address(socket: &Socket) -> Option<SocketAddr> {
    socket
        .local_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .filter(|a| a.port() != 0)
}

/// The kernel's errno, by what it means for the path. ICMP host-unreachable and
/// admin-prohibited both arrive as EHOSTUNREACH; ICMP port-unreachable as ECONNREFUSED, like
/// a RST: the evidence's `icmp` (from the error queue) tells them apart.
pub fn classify(e: &io::Error) -> TcpOutcome {
    match e.raw_os_error() {
        Some(libc::ECONNREFUSED) => TcpOutcome::Refused,
        Some(libc::ETIMEDOUT) => TcpOutcome::Timeout,
        Some(libc::EHOSTUNREACH) => TcpOutcome::HostUnreachable,
        Some(libc::ENETUNREACH) => TcpOutcome::NetworkUnreachable,
        Some(libc::EADDRNOTAVAIL) => TcpOutcome::AddressNotAvailable,
        Some(libc::EPERM) | Some(libc::EACCES) => TcpOutcome::PermissionDenied,
        _ => TcpOutcome::Error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::TargetRole;

    #[test]
    fn errnos_are_classified() {
        let c = |n| classify(&io::Error::from_raw_os_error(n));
        assert_eq!(c(libc::ECONNREFUSED), TcpOutcome::Refused);
        assert_eq!(c(libc::EHOSTUNREACH), TcpOutcome::HostUnreachable);
        assert_eq!(c(libc::ENETUNREACH), TcpOutcome::NetworkUnreachable);
        assert_eq!(c(libc::EADDRNOTAVAIL), TcpOutcome::AddressNotAvailable);
        assert_eq!(c(libc::EPERM), TcpOutcome::PermissionDenied);
        assert_eq!(c(libc::EACCES), TcpOutcome::PermissionDenied);
        assert_eq!(c(libc::ETIMEDOUT), TcpOutcome::Timeout);
        assert_eq!(c(libc::EPROTO), TcpOutcome::Error);
    }

    #[tokio::test]
    async fn loopback_listener_and_closed_port() {
        // SO_REUSEPORT on the listener and on the holder below: the holder takes the port
        // before the listener lets it go, so no other test's bind can slip in between.
        let reusable = || {
            let s = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).unwrap();
            s.set_reuse_address(true).unwrap();
            s.set_reuse_port(true).unwrap();
            s
        };
        let listening = reusable();
        let loopback: SocketAddr = "127.0.0.1:0".parse().unwrap();
        listening.bind(&loopback.into()).unwrap();
        listening.listen(8).unwrap();
        let listener: std::net::TcpListener = listening.into();
        let open = listener.local_addr().unwrap();
        let t = Target {
            label: "t".into(),
            host: open.ip().to_string(),
            port: Some(open.port()),
            role: TargetRole::Endpoint.into(),
        };
        let ok = connect(&t, open, Duration::from_secs(2)).await;
        assert_eq!(ok.outcome, TcpOutcome::Ok, "{ok:?}");
        assert_eq!(ok.role, TargetRole::Endpoint, "the target's role is echoed");
        assert_eq!(ok.local.unwrap().ip(), open.ip());
        let (_conn, peer) = listener.accept().unwrap();
        assert_eq!(
            Some(peer),
            ok.local,
            "the listener saw the local address we report"
        );
        // Hold the port with a socket that is bound but not listening: once the listener is
        // gone, connects are refused (regression: binding the holder after dropping the
        // listener failed now and then with EADDRINUSE, another test's bind having taken the
        // port in between).
        let holder = reusable();
        holder.bind(&open.into()).unwrap();
        drop(listener);
        let refused = connect(&t, open, Duration::from_secs(2)).await;
        assert_eq!(refused.outcome, TcpOutcome::Refused, "{refused:?}");
        assert_eq!(refused.errno, Some(libc::ECONNREFUSED));
        assert_eq!(refused.icmp, None, "a RST is not an ICMP error");
    }
}
