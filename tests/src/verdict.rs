//! The verdict engine over a probe run, as `kubectl-netdebug local --netns NAME` would judge
//! it: for tests that check what the verdict says about a fault they made.

use netdebug_verdict::kube::KubeEvidence;
use netdebug_verdict::{evaluate, Inputs, Origin, Title, Verdict};
use protocol::{Decoded, Event};

use crate::netns::Netns;
use crate::probe::ProbeRun;

impl ProbeRun {
    /// The verdict on the events `keep` lets through (all of them: `|_| true`), for a local
    /// run in `ns` toward `destination`. Keeping one target's evidence judges that target
    /// alone when a run probed several.
    pub fn local_verdict(
        &self,
        ns: &Netns,
        destination: &str,
        keep: impl Fn(&Event) -> bool,
    ) -> Verdict {
        let title = Title {
            source: format!("netns/{}", ns.name()),
            destination: Some(destination.to_string()),
            namespace: None,
            origin: Some(Origin::LocalNetns {
                name: ns.name().to_string(),
            }),
            asked: None,
        };
        let mut inputs = Inputs::new(title, KubeEvidence::default());
        for envelope in self.events.iter().filter(|e| keep(&e.event)) {
            inputs.record(Decoded::Event(Box::new(envelope.clone())));
        }
        evaluate(&inputs)
    }
}
