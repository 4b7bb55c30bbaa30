//! The node's conntrack table, kept open for the whole run: the node view's proof of the
//! Service dataplane. A pod's connect to a ClusterIP is translated on the node, so only the
//! node's table says whether it was translated and to which endpoint.
//!
//! The socket is opened in the namespace the probe starts in, before it enters a pod's
//! (`--pod-uid`): a netlink socket stays bound to the namespace it was created in, so the
//! lookups read the node's table while every check runs in the pod's namespace. In the node's
//! own namespace (`node/NAME`) it is simply that namespace's table.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use protocol::{NatState, NodeNat};

use crate::conntrack_lookup::{ConntrackLookup, LookupError};

/// The kernel answers from memory at once; a short bound keeps a misbehaving socket from
/// stalling the connects (lookups run on the runtime's one thread).
const LOOKUP_TIMEOUT: Duration = Duration::from_millis(50);

pub struct NodeConntrack {
    /// The open socket, or why it could not be opened (said on every connect's evidence).
    lookup: Result<Mutex<ConntrackLookup>, String>,
}

impl NodeConntrack {
    /// Opens the socket in the calling thread's current network namespace.
    pub fn open() -> NodeConntrack {
        let lookup = ConntrackLookup::open()
            .map(|mut l| {
                l.set_timeout(LOOKUP_TIMEOUT);
                Mutex::new(l)
            })
            .map_err(|e| e.to_string());
        NodeConntrack { lookup }
    }

    /// The reply-direction source of `local -> dst` in the node's table (see
    /// [`ConntrackLookup::reply_source`]).
    fn reply_source(
        &self,
        local: SocketAddr,
        dst: SocketAddr,
    ) -> Result<Option<SocketAddr>, String> {
        let lookup = self.lookup.as_ref().map_err(Clone::clone)?;
        // A poisoned lock only means another lookup panicked; the socket itself is fine.
        let mut lookup = lookup.lock().unwrap_or_else(|p| p.into_inner());
        lookup
            .reply_source(local, dst)
            .map_err(|e: LookupError| e.to_string())
    }

    /// What the node's table says about one connect from `local` to the ClusterIP `dst`.
    /// `local` None: the socket never got a local address, so there is nothing to look up.
    pub fn nat_of(&self, local: Option<SocketAddr>, dst: SocketAddr) -> Option<NodeNat> {
        let local = local?;
        Some(nat_from(dst, self.reply_source(local, dst)))
    }
}

/// The evidence for one lookup's answer.
fn nat_from(dst: SocketAddr, answer: Result<Option<SocketAddr>, String>) -> NodeNat {
    let (state, endpoint, reason) = match answer {
        Ok(Some(reply)) if reply != dst => (NatState::Translated, Some(reply), None),
        Ok(Some(_)) => (NatState::NotTranslated, None, None),
        Ok(None) => (NatState::NoEntry, None, None),
        Err(why) => (NatState::Unavailable, None, Some(why)),
    };
    NodeNat {
        state: state.into(),
        endpoint,
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_answer_is_named() {
        let dst: SocketAddr = "10.96.0.20:80".parse().unwrap();
        let ep: SocketAddr = "10.244.0.7:8080".parse().unwrap();
        let n = nat_from(dst, Ok(Some(ep)));
        assert_eq!(n.state, NatState::Translated);
        assert_eq!(n.endpoint, Some(ep));
        assert_eq!(
            nat_from(dst, Ok(Some(dst))).state,
            NatState::NotTranslated,
            "a reply from the ClusterIP itself means no DNAT"
        );
        assert_eq!(nat_from(dst, Ok(None)).state, NatState::NoEntry);
        let n = nat_from(dst, Err("no CAP_NET_ADMIN".into()));
        assert_eq!(n.state, NatState::Unavailable);
        assert_eq!(n.reason.as_deref(), Some("no CAP_NET_ADMIN"));
    }
}
