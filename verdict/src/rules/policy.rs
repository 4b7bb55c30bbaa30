//! Policy: NetworkPolicy predictions from the client, held against what the probe saw. A
//! predicted deny that explains a timeout is reported by the transport rules; here: admits
//! (proven lines) and a deny the connects contradict (the CNI does not enforce policies).

use protocol::TcpOutcome;

use crate::facts::Facts;
use crate::kube::KubeFindingCode;
use crate::model::{Layer, RuleCode, Severity};
use crate::rules::Report;

pub fn apply(f: &Facts, r: &mut Report) {
    let Some(kube) = f.kube else { return };
    for x in &kube.findings {
        match x.code {
            KubeFindingCode::NetworkPolicyAdmits => r.ok(Layer::Policy, x.message.clone()),
            KubeFindingCode::NetworkPolicyDenies => {
                if r.has(RuleCode::TcpTimeoutNetworkPolicy) {
                    continue;
                }
                // Connects that should have been dropped and were not.
                let contradicted: Vec<String> = f
                    .all::<protocol::TcpEvidence>()
                    .filter(|t| t.outcome == TcpOutcome::Ok)
                    .map(|t| t.address.to_string())
                    .collect();
                if contradicted.is_empty() {
                    // No connect evidence either way: show the prediction.
                    r.info(Layer::Policy, format!("predicted: {}", x.message));
                    continue;
                }
                r.finding(
                    RuleCode::NetworkPolicyNotEnforced,
                    Layer::Policy,
                    Severity::Warning,
                    "policy not enforced",
                    format!(
                        "{} is predicted to deny this traffic, yet {} connected: the network \
                         plugin does not enforce NetworkPolicy (or the prediction is wrong)",
                        x.object,
                        contradicted.join(", ")
                    ),
                )
                .line(format!("conflicting evidence: {} ; yet connects succeed", x.message))
                .next("kubectl get pods -n kube-system -o wide   # which CNI runs; does it enforce NetworkPolicy?")
                .add();
            }
            KubeFindingCode::NetworkPolicyUndetermined => {
                r.info(Layer::Policy, format!("undetermined: {}", x.message))
            }
            // With DNS timeouts the DNS rule names the policy; otherwise say the prediction.
            KubeFindingCode::NetworkPolicyDeniesDns if !r.has(RuleCode::DnsServerUnreachable) => {
                r.info(Layer::Policy, format!("predicted: {}", x.message));
            }
            _ => {}
        }
    }
}
