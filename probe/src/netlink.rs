//! A small rtnetlink session shared by the links, route and sysctls checks: one NETLINK_ROUTE
//! socket driven by the async runtime, with the few queries the probe needs (links, addresses,
//! `ip route get`, route dumps, neighbours, rules), each collected into a Vec.
//!
//! The kernel answers these from memory, so they are quick; the checks still run them under
//! the run's deadline (the runner's timeout cancels a stuck future).

use std::collections::HashMap;
use std::net::IpAddr;

use futures::TryStreamExt;
use rtnetlink::packet_route::address::AddressMessage;
use rtnetlink::packet_route::link::{LinkAttribute, LinkMessage};
use rtnetlink::packet_route::neighbour::NeighbourMessage;
use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute, RouteFlags, RouteMessage};
use rtnetlink::packet_route::rule::RuleMessage;
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::{Handle, IpVersion};
use tokio::task::JoinHandle;

#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    #[error("cannot open a NETLINK_ROUTE socket: {0}")]
    Open(std::io::Error),
    /// The kernel answered with an error (errno, positive).
    #[error("{message}")]
    Kernel { errno: i32, message: String },
    #[error("rtnetlink request failed: {0}")]
    Other(String),
}

impl From<rtnetlink::Error> for NetlinkError {
    fn from(e: rtnetlink::Error) -> Self {
        match e {
            rtnetlink::Error::NetlinkError(msg) => {
                // Error codes come back negative (`-ENETUNREACH`).
                let errno = msg.raw_code().abs();
                NetlinkError::Kernel {
                    errno,
                    message: std::io::Error::from_raw_os_error(errno).to_string(),
                }
            }
            other => NetlinkError::Other(other.to_string()),
        }
    }
}

/// One rtnetlink connection. The connection task is aborted when this is dropped.
pub struct Rtnl {
    handle: Handle,
    connection: JoinHandle<()>,
}

impl Drop for Rtnl {
    fn drop(&mut self) {
        self.connection.abort();
    }
}

impl Rtnl {
    /// Open a socket in the current network namespace. Must be called inside the runtime.
    pub fn connect() -> Result<Rtnl, NetlinkError> {
        let (connection, handle, _messages) =
            rtnetlink::new_connection().map_err(NetlinkError::Open)?;
        Ok(Rtnl {
            handle,
            connection: tokio::spawn(connection),
        })
    }

    pub async fn links(&self) -> Result<Vec<LinkMessage>, NetlinkError> {
        Ok(self.handle.link().get().execute().try_collect().await?)
    }

    /// Interface index -> name, for turning RTA_OIF into a device name.
    pub async fn link_names(&self) -> Result<HashMap<u32, String>, NetlinkError> {
        Ok(self
            .links()
            .await?
            .into_iter()
            .filter_map(|l| {
                l.attributes.iter().find_map(|a| match a {
                    LinkAttribute::IfName(n) => Some((l.header.index, n.clone())),
                    _ => None,
                })
            })
            .collect())
    }

    pub async fn addresses(&self) -> Result<Vec<AddressMessage>, NetlinkError> {
        Ok(self.handle.address().get().execute().try_collect().await?)
    }

    pub async fn neighbours(&self) -> Result<Vec<NeighbourMessage>, NetlinkError> {
        Ok(self
            .handle
            .neighbours()
            .get()
            .execute()
            .try_collect()
            .await?)
    }

    pub async fn rules(&self, version: IpVersion) -> Result<Vec<RuleMessage>, NetlinkError> {
        Ok(self
            .handle
            .rule()
            .get(version)
            .execute()
            .try_collect()
            .await?)
    }

    /// Every route of one family, of every table (`ip route show table all`): a dump
    /// request without a table filter.
    pub async fn routes(&self, version: IpVersion) -> Result<Vec<RouteMessage>, NetlinkError> {
        let mut message = RouteMessage::default();
        message.header.address_family = match version {
            IpVersion::V4 => AddressFamily::Inet,
            IpVersion::V6 => AddressFamily::Inet6,
        };
        Ok(self
            .handle
            .route()
            .get(message)
            .execute()
            .try_collect()
            .await?)
    }

    /// `ip route get DST`: RTM_GETROUTE for one address with RTM_F_LOOKUP_TABLE set, so the
    /// answer carries the id of the table the route really came from (a policy-routing table,
    /// not always `main`).
    pub async fn route_get(&self, destination: IpAddr) -> Result<RouteMessage, NetlinkError> {
        let mut message = RouteMessage::default();
        let (family, prefix) = match destination {
            IpAddr::V4(_) => (AddressFamily::Inet, 32),
            IpAddr::V6(_) => (AddressFamily::Inet6, 128),
        };
        message.header.address_family = family;
        message.header.destination_prefix_length = prefix;
        message.header.flags = RouteFlags::LookupTable;
        message
            .attributes
            .push(RouteAttribute::Destination(RouteAddress::from(destination)));
        let mut answers: Vec<RouteMessage> = self
            .handle
            .route()
            .get(message)
            .execute()
            .try_collect()
            .await?;
        answers.pop().ok_or_else(|| {
            NetlinkError::Other("the kernel sent no answer to a route lookup".into())
        })
    }
}

/// A route attribute address as an IpAddr (MPLS and unknown families are not IP).
pub fn route_address(address: &RouteAddress) -> Option<IpAddr> {
    match address {
        RouteAddress::Inet(a) => Some(IpAddr::V4(*a)),
        RouteAddress::Inet6(a) => Some(IpAddr::V6(*a)),
        _ => None,
    }
}

/// A hardware address in the usual `aa:bb:cc:dd:ee:ff` spelling.
pub fn format_mac(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_spelling() {
        assert_eq!(
            format_mac(&[0x02, 0x42, 0x0a, 0xf4, 0, 0x0d]),
            "02:42:0a:f4:00:0d"
        );
        assert_eq!(format_mac(&[]), "");
    }

    #[test]
    fn route_addresses() {
        let v4: IpAddr = "10.199.0.1".parse().unwrap();
        assert_eq!(route_address(&RouteAddress::from(v4)), Some(v4));
        let v6: IpAddr = "fd00:199::1".parse().unwrap();
        assert_eq!(route_address(&RouteAddress::from(v6)), Some(v6));
        assert_eq!(route_address(&RouteAddress::Other(vec![1, 2])), None);
    }
}
