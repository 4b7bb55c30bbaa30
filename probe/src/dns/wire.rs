//! DNS messages: building a query and judging a reply, with hickory-proto doing the encoding
//! and decoding. No I/O here.

use std::net::IpAddr;

use hickory_proto::op::{Edns, Header, Message, Query};
use hickory_proto::rr::{DNSClass, Name, RData, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
use protocol::{DnsRecord, Open, Rcode};

/// glibc's EDNS payload size (RESOLV_EDNS_BUFFER_SIZE) when `options edns0` is set.
const EDNS_PAYLOAD: u16 = 1200;

pub const RCODE_NOERROR: u16 = 0;
pub const RCODE_SERVFAIL: u16 = 2;
pub const RCODE_NXDOMAIN: u16 = 3;
pub const RCODE_NOTIMP: u16 = 4;
pub const RCODE_REFUSED: u16 = 5;

/// One encoded query and what a reply must echo to be accepted.
#[derive(Debug, Clone)]
pub struct OutgoingQuery {
    pub id: u16,
    pub bytes: Vec<u8>,
    name: Name,
    qtype: RecordType,
}

impl OutgoingQuery {
    /// The record type asked for.
    pub fn qtype(&self) -> RecordType {
        self.qtype
    }
}

/// A reply that answers our query (id and question match).
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub rcode: u16,
    pub truncated: bool,
    pub authoritative: bool,
    pub recursion_available: bool,
    /// Records of the answer section, presented.
    pub answers: Vec<DnsRecord>,
    /// A/AAAA addresses in the answer section.
    pub addresses: Vec<IpAddr>,
    pub answer_count: u16,
    pub additional_count: u16,
}

impl Reply {
    /// glibc's "referred query" test (send_dg): a NOERROR without answers, authority bit,
    /// recursion-available bit or additional records is a referral; glibc tries the next
    /// nameserver.
    pub fn is_referral(&self) -> bool {
        self.rcode == RCODE_NOERROR
            && self.answer_count == 0
            && !self.authoritative
            && !self.recursion_available
            && self.additional_count == 0
    }

    /// SERVFAIL, NOTIMP and REFUSED make glibc move on to the next nameserver.
    pub fn server_rejected(&self) -> bool {
        matches!(self.rcode, RCODE_SERVFAIL | RCODE_NOTIMP | RCODE_REFUSED)
    }
}

/// Encode a recursive query for `fqdn` (trailing dot) with a random id, as glibc sends it.
pub fn build_query(fqdn: &str, qtype: RecordType, edns0: bool) -> Result<OutgoingQuery, String> {
    let name = Name::from_ascii(fqdn).map_err(|e| format!("`{fqdn}` is not a DNS name: {e}"))?;
    let mut message = Message::query();
    message.metadata.recursion_desired = true;
    message.add_query(Query::query(name.clone(), qtype));
    if edns0 {
        let mut edns = Edns::new();
        edns.set_max_payload(EDNS_PAYLOAD);
        message.set_edns(edns);
    }
    let bytes = message
        .to_vec()
        .map_err(|e| format!("cannot encode a query for `{fqdn}`: {e}"))?;
    Ok(OutgoingQuery {
        id: message.metadata.id,
        bytes,
        name,
        qtype,
    })
}

/// Judge `bytes` as a reply to `query`: `None` when it is not ours (wrong id, wrong question,
/// not a response, undecodable) and must be ignored while waiting, as glibc does.
pub fn match_reply(query: &OutgoingQuery, bytes: &[u8]) -> Option<Reply> {
    match Message::from_vec(bytes) {
        Ok(message) => {
            let metadata = &message.metadata;
            if metadata.id != query.id
                || metadata.message_type != hickory_proto::op::MessageType::Response
                || !question_matches(query, &message.queries)
            {
                return None;
            }
            let answers: Vec<DnsRecord> = message.answers.iter().map(present).collect();
            let addresses = message
                .answers
                .iter()
                .filter_map(|r| match &r.data {
                    RData::A(a) => Some(IpAddr::V4(a.0)),
                    RData::AAAA(a) => Some(IpAddr::V6(a.0)),
                    _ => None,
                })
                .collect();
            Some(Reply {
                rcode: u16::from(metadata.response_code),
                truncated: metadata.truncation,
                authoritative: metadata.authoritative,
                recursion_available: metadata.recursion_available,
                answer_count: message.answers.len() as u16,
                additional_count: (message.additionals.len() + usize::from(message.edns.is_some()))
                    as u16,
                answers,
                addresses,
            })
        }
        // A truncated UDP reply may be cut inside a record; its header and question still say
        // whether it is ours and that TCP is needed.
        Err(_) => truncated_reply(query, bytes),
    }
}

fn truncated_reply(query: &OutgoingQuery, bytes: &[u8]) -> Option<Reply> {
    let mut decoder = BinDecoder::new(bytes);
    let header = Header::read(&mut decoder).ok()?;
    if !header.metadata.truncation || header.metadata.id != query.id {
        return None;
    }
    let queries = Message::read_queries(&mut decoder, header.counts.queries as usize).ok()?;
    if !question_matches(query, &queries) {
        return None;
    }
    Some(Reply {
        rcode: u16::from(header.metadata.response_code),
        truncated: true,
        authoritative: header.metadata.authoritative,
        recursion_available: header.metadata.recursion_available,
        answer_count: header.counts.answers,
        additional_count: header.counts.additionals,
        answers: Vec::new(),
        addresses: Vec::new(),
    })
}

/// glibc's res_queriesmatch: same name (case-insensitive), type and class.
fn question_matches(query: &OutgoingQuery, queries: &[Query]) -> bool {
    match queries {
        [q] => {
            q.query_type() == query.qtype
                && q.query_class() == DNSClass::IN
                && q.name()
                    .to_ascii()
                    .eq_ignore_ascii_case(&query.name.to_ascii())
        }
        _ => false,
    }
}

fn present(record: &hickory_proto::rr::Record) -> DnsRecord {
    DnsRecord {
        name: record.name.to_ascii(),
        rtype: Open::parse(&record.record_type().to_string()),
        ttl: record.ttl,
        data: record.data.to_string(),
    }
}

/// The mnemonic dig prints for an rcode.
pub fn rcode_name(rcode: u16) -> Open<Rcode> {
    match Rcode::from_code(rcode) {
        Some(r) => Open::Known(r),
        None => Open::Unknown(format!("RCODE{rcode}")),
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use hickory_proto::op::{MessageType, OpCode, ResponseCode};
    use hickory_proto::rr::rdata::A;
    use hickory_proto::rr::Record;

    use super::*;

    fn reply_to(q: &OutgoingQuery, name: &str, rcode: ResponseCode, ips: &[Ipv4Addr]) -> Vec<u8> {
        let mut m = Message::new(q.id, MessageType::Response, OpCode::Query);
        m.metadata.response_code = rcode;
        m.metadata.recursion_available = true;
        m.add_query(Query::query(Name::from_ascii(name).unwrap(), q.qtype));
        for ip in ips {
            m.add_answer(Record::from_rdata(
                Name::from_ascii(name).unwrap(),
                30,
                RData::A(A(*ip)),
            ));
        }
        m.to_vec().unwrap()
    }

    #[test]
    fn query_is_recursive_with_one_question() {
        let q = build_query("a.example.", RecordType::A, false).unwrap();
        let m = Message::from_vec(&q.bytes).unwrap();
        assert!(m.metadata.recursion_desired);
        assert_eq!(m.queries.len(), 1);
        assert_eq!(m.metadata.id, q.id);
        assert!(m.edns.is_none());
        let q = build_query("a.example.", RecordType::AAAA, true).unwrap();
        let m = Message::from_vec(&q.bytes).unwrap();
        assert_eq!(m.edns.unwrap().max_payload(), 1200);
    }

    #[test]
    fn reply_is_matched_and_presented() {
        let q = build_query("a.example.", RecordType::A, false).unwrap();
        let ip = Ipv4Addr::new(10, 199, 0, 7);
        let r = match_reply(
            &q,
            &reply_to(&q, "A.Example.", ResponseCode::NoError, &[ip]),
        )
        .unwrap();
        assert_eq!(r.rcode, RCODE_NOERROR);
        assert_eq!(r.addresses, vec![IpAddr::V4(ip)]);
        assert_eq!(r.answers[0].rtype, protocol::RecordType::A);
        assert_eq!(r.answers[0].ttl, 30);
        assert_eq!(r.answers[0].data, "10.199.0.7");
        assert!(!r.is_referral());
    }

    #[test]
    fn mismatched_replies_are_ignored() {
        let q = build_query("a.example.", RecordType::A, false).unwrap();
        let mut other = q.clone();
        other.id = q.id.wrapping_add(1);
        assert!(match_reply(
            &other,
            &reply_to(&q, "a.example.", ResponseCode::NoError, &[])
        )
        .is_none());
        assert!(match_reply(&q, &reply_to(&q, "b.example.", ResponseCode::NoError, &[])).is_none());
        assert!(
            match_reply(&q, &q.bytes).is_none(),
            "a query is not a reply"
        );
        assert!(match_reply(&q, &[1, 2, 3]).is_none());
    }

    #[test]
    fn cut_truncated_reply_is_still_recognised() {
        let q = build_query("a.example.", RecordType::A, false).unwrap();
        let ips: Vec<Ipv4Addr> = (1..=20).map(|i| Ipv4Addr::new(10, 199, 1, i)).collect();
        let mut bytes = reply_to(&q, "a.example.", ResponseCode::NoError, &ips);
        bytes[2] |= 0b0000_0010; // TC
        bytes.truncate(bytes.len() - 7); // cut inside the last record
        let r = match_reply(&q, &bytes).unwrap();
        assert!(r.truncated);
        assert_eq!(r.answer_count, 20);
    }

    #[test]
    fn rcodes_are_named_like_dig() {
        assert_eq!(rcode_name(3), Rcode::NxDomain);
        assert_eq!(rcode_name(3).as_str(), "NXDOMAIN");
        assert_eq!(rcode_name(2), Rcode::ServFail);
        assert_eq!(rcode_name(12), Open::Unknown("RCODE12".into()));
    }
}
