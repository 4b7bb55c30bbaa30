//! Check `app`: above each target address's TCP connect (the same addresses the tcp check
//! connects to: the ClusterIP and each endpoint, names resolved by the probe's resolver), a TLS
//! handshake where the plan asks for one and one HTTP/1.1 request where it asks for one. All
//! addresses at once; each bounded by `app.timeout_ms` after its connect and by the deadline.
//! One `tls` and/or one `http` evidence per address.
//!
//! Modules: [`exchange`] (one address: connect, handshake, request), [`tls`] (the handshake,
//! step by step), [`certs`] (the chain's facts and verdict), [`http`] (request and response).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use protocol::{Evidence, Target};

use super::Outcome;
use crate::context::Ctx;

mod certs;
mod exchange;
mod http;
mod tls;

/// Room kept before the run's deadline to report what an exchange found.
const REPORT_ROOM: Duration = Duration::from_millis(50);

pub async fn run(ctx: Arc<Ctx>) -> Outcome {
    let Some(app) = ctx.plan.app.as_ref() else {
        return Outcome::Skipped {
            reason: "the plan asks for no application exchange (no `app`)".into(),
            missing_capability: None,
        };
    };
    let client = match app.tls.as_ref().map(|_| tls::Client::new()) {
        None => None,
        Some(Ok(client)) => Some(client),
        Some(Err(why)) => return Outcome::Failed(why),
    };
    let shared = &ctx;
    let resolved = futures::future::join_all(
        ctx.plan
            .targets
            .iter()
            .filter_map(|t| t.port.map(|port| (t, port)))
            .map(
                |(target, port)| async move { (target, port, shared.resolve_target(target).await) },
            ),
    )
    .await;
    let mut addresses: Vec<(&Target, SocketAddr)> = Vec::new();
    for (target, port, ips) in resolved {
        match ips {
            Ok(ips) => addresses.extend(
                ips.into_iter()
                    .map(|ip| (target, SocketAddr::new(ip, port))),
            ),
            Err(why) => {
                // No address to show: the unspecified one with the target's port.
                let address = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port);
                let mut tls = app
                    .tls
                    .as_ref()
                    .map(|p| exchange::tls_evidence(target, address, p));
                let mut http = app
                    .http
                    .as_ref()
                    .map(|p| exchange::http_evidence(target, address, p, app.tls.is_some()));
                if let Some(t) = tls.as_mut() {
                    t.message = Some(why.clone());
                }
                if let Some(h) = http.as_mut() {
                    h.message = Some(why);
                }
                emit(&ctx, exchange::Evidence { tls, http });
            }
        }
    }
    let run_deadline = ctx
        .deadline
        .checked_sub(REPORT_ROOM)
        .unwrap_or(ctx.deadline);
    let exchanges = addresses.into_iter().map(|(target, address)| {
        let limits = exchange::Limits {
            connect_timeout: Duration::from_millis(ctx.plan.connect_timeout_ms)
                .min(ctx.remaining().saturating_sub(REPORT_ROOM)),
            run_deadline,
        };
        exchange::run(app, client.as_ref(), target, address, limits)
    });
    for evidence in futures::future::join_all(exchanges).await {
        emit(&ctx, evidence);
    }
    Outcome::Completed
}

fn emit(ctx: &Ctx, evidence: exchange::Evidence) {
    if let Some(tls) = evidence.tls {
        ctx.emit(Evidence::Tls(tls));
    }
    if let Some(http) = evidence.http {
        ctx.emit(Evidence::Http(http));
    }
}
