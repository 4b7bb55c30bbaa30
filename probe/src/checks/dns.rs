//! Check `dns`: the resolver configuration once, then every name the plan asks about (the
//! `dns.names` and every target whose host is a name), each resolved the way the pod's
//! glibc would. The lookups go through `ctx.lookup`, so tcp/route reuse the same answers.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;

use protocol::Evidence;

use super::Outcome;
use crate::context::Ctx;

pub async fn run(ctx: Arc<Ctx>) -> Outcome {
    ctx.emit(Evidence::DnsConfig(ctx.resolver_evidence().clone()));
    let lookups = futures::future::join_all(names(&ctx).into_iter().map(|name| {
        let ctx = ctx.clone();
        async move { ctx.lookup(&name).await }
    }))
    .await;
    for lookup in lookups {
        ctx.emit(Evidence::DnsLookup((*lookup).clone()));
    }
    if let Some(rounds) = ctx.plan.rounds.as_ref() {
        super::dns_rounds::run(&ctx, rounds, &names(&ctx)).await;
    }
    Outcome::Completed
}

/// The plan's names first, then target host names, each once, in plan order.
fn names(ctx: &Ctx) -> Vec<String> {
    let mut seen = BTreeSet::new();
    let from_targets = ctx
        .plan
        .targets
        .iter()
        .map(|t| &t.host)
        .filter(|h| h.parse::<IpAddr>().is_err());
    ctx.plan
        .dns
        .names
        .iter()
        .chain(from_targets)
        .filter(|n| seen.insert(n.to_string()))
        .cloned()
        .collect()
}
