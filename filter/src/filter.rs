//! The tcpdump filter language, the subset a network debugger needs: parsing into an
//! expression tree with column-accurate errors.
//!
//! Hand-written on purpose: libpcap's compiler is C (the probe is a static Rust binary with no C
//! dependencies beyond libc), and the one pure-Rust crate that compiles pcap syntax to classic
//! BPF (`pktbaffle` 0.1.0, a single unproven release) is too young to load into the kernel on
//! other people's pods. The subset is small enough to test completely against tcpdump itself.
//!
//! Supported: `[src|dst|src or dst|src and dst] host ADDR`, `... net CIDR`, `[tcp|udp]
//! [src|dst] port N`, `... portrange A-B`, `ip|ip6|arp host/net`, `ip|ip6 proto N`, `tcp`,
//! `udp`, `icmp`, `icmp6`, `ip`, `ip6`, `arp`, `PROTO[OFF(:SIZE)] (& MASK) RELOP VALUE` with
//! tcpdump's named constants (`tcp[tcpflags] & (tcp-syn|tcp-ack) != 0`), `and`/`&&`,
//! `or`/`||`, `not`/`!` and parentheses. Addresses are literals (IPv4 and IPv6); host names are
//! refused because the probe never resolves names through libc.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A syntax error: the message and the 1-based column where it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterError {
    pub message: String,
    pub column: usize,
}

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "filter: {} at column {}", self.message, self.column)
    }
}

impl std::error::Error for FilterError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    Src,
    Dst,
    SrcOrDst,
    SrcAndDst,
}

/// A protocol qualifier or a protocol primitive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    Ip,
    Ip6,
    Arp,
    Tcp,
    Udp,
    Icmp,
    Icmp6,
}

impl Proto {
    fn from_word(word: &str) -> Option<Proto> {
        Some(match word {
            "ip" => Proto::Ip,
            "ip6" => Proto::Ip6,
            "arp" => Proto::Arp,
            "tcp" => Proto::Tcp,
            "udp" => Proto::Udp,
            "icmp" => Proto::Icmp,
            "icmp6" => Proto::Icmp6,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelOp {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Primitive {
    /// `tcp`, `ip6`...: the packet is of this protocol.
    Proto(Proto),
    /// `ip proto N` / `ip6 proto N`.
    IpProto { ip6: bool, number: u8 },
    /// `[ip|ip6|arp] [dir] host ADDR` / `net ADDR/LEN`; a host is a /32 or /128 net.
    Net {
        qualifier: Option<Proto>,
        dir: Dir,
        addr: IpAddr,
        prefix: u8,
    },
    /// `[tcp|udp] [dir] port N` / `portrange A-B`.
    Port {
        proto: Option<Proto>,
        dir: Dir,
        low: u16,
        high: u16,
    },
    /// `PROTO[OFFSET:SIZE] & MASK RELOP VALUE`.
    Bytes {
        proto: Proto,
        offset: u32,
        size: u8,
        mask: Option<u32>,
        op: RelOp,
        value: u32,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Primitive(Primitive),
}

pub fn parse(text: &str) -> Result<Expr, FilterError> {
    let tokens = lex(text)?;
    if tokens.is_empty() {
        return Err(FilterError {
            message: "empty expression".into(),
            column: 1,
        });
    }
    let mut parser = Parser {
        tokens,
        pos: 0,
        end_column: text.chars().count() + 1,
    };
    let expr = parser.or_expr()?;
    if let Some(tok) = parser.peek() {
        return Err(parser.error_at(tok.column, format!("unexpected `{}`", tok.text)));
    }
    Ok(expr)
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Word,
    Punct,
}

#[derive(Debug, Clone)]
struct Token {
    kind: Kind,
    text: String,
    column: usize,
}

/// Characters a word (keyword, number, address, range, named constant) is made of. `:` only
/// outside brackets, where it belongs to IPv6 addresses; inside, it separates offset and size.
fn word_char(c: char, in_brackets: bool) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '/' | '-') || (c == ':' && !in_brackets)
}

fn lex(text: &str) -> Result<Vec<Token>, FilterError> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    let mut brackets = 0usize;
    while i < chars.len() {
        let c = chars[i];
        let column = i + 1;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if word_char(c, brackets > 0) {
            let start = i;
            while i < chars.len() && word_char(chars[i], brackets > 0) {
                i += 1;
            }
            tokens.push(Token {
                kind: Kind::Word,
                text: chars[start..i].iter().collect(),
                column,
            });
            continue;
        }
        let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
        let punct = match two.as_str() {
            "&&" | "||" | "!=" | "==" | "<=" | ">=" => two,
            _ => match c {
                '(' | ')' | '!' | '&' | '|' | '=' | '<' | '>' | ':' => c.to_string(),
                '[' => {
                    brackets += 1;
                    c.to_string()
                }
                ']' => {
                    brackets = brackets.saturating_sub(1);
                    c.to_string()
                }
                _ => {
                    return Err(FilterError {
                        message: format!("unexpected character `{c}`"),
                        column,
                    })
                }
            },
        };
        i += punct.chars().count();
        tokens.push(Token {
            kind: Kind::Punct,
            text: punct,
            column,
        });
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    end_column: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn peek_text(&self) -> Option<&str> {
        self.peek().map(|t| t.text.as_str())
    }

    fn peek_word(&self, offset: usize) -> Option<&str> {
        self.tokens
            .get(self.pos + offset)
            .filter(|t| t.kind == Kind::Word)
            .map(|t| t.text.as_str())
    }

    fn column(&self) -> usize {
        self.peek().map(|t| t.column).unwrap_or(self.end_column)
    }

    fn error_at(&self, column: usize, message: impl Into<String>) -> FilterError {
        FilterError {
            message: message.into(),
            column,
        }
    }

    /// An error at the current token: "expected X" (with what was found instead).
    fn expected(&self, what: &str) -> FilterError {
        let found = match self.peek() {
            Some(t) => format!(", found `{}`", t.text),
            None => ", found the end of the expression".to_string(),
        };
        self.error_at(self.column(), format!("expected {what}{found}"))
    }

    fn eat(&mut self, text: &str) -> bool {
        if self.peek_text() == Some(text) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn next_word(&mut self, what: &str) -> Result<(String, usize), FilterError> {
        match self.peek() {
            Some(t) if t.kind == Kind::Word => {
                let out = (t.text.clone(), t.column);
                self.pos += 1;
                Ok(out)
            }
            _ => Err(self.expected(what)),
        }
    }

    fn or_expr(&mut self) -> Result<Expr, FilterError> {
        let mut left = self.and_expr()?;
        while self.eat("or") || self.eat("||") {
            let right = self.and_expr()?;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and_expr(&mut self) -> Result<Expr, FilterError> {
        let mut left = self.not_expr()?;
        while self.eat("and") || self.eat("&&") {
            let right = self.not_expr()?;
            left = Expr::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn not_expr(&mut self) -> Result<Expr, FilterError> {
        if self.eat("not") || self.eat("!") {
            return Ok(Expr::Not(Box::new(self.not_expr()?)));
        }
        if self.eat("(") {
            let inner = self.or_expr()?;
            if !self.eat(")") {
                return Err(self.expected("`)`"));
            }
            return Ok(inner);
        }
        self.primitive().map(Expr::Primitive)
    }

    fn primitive(&mut self) -> Result<Primitive, FilterError> {
        let proto = match self.peek_word(0).and_then(Proto::from_word) {
            Some(p) => {
                self.pos += 1;
                Some(p)
            }
            None => None,
        };
        if let Some(p) = proto {
            if self.peek_text() == Some("[") {
                return self.bytes(p);
            }
            if self.peek_word(0) == Some("proto") {
                let column = self.column();
                self.pos += 1;
                let ip6 = match p {
                    Proto::Ip => false,
                    Proto::Ip6 => true,
                    _ => return Err(self.error_at(column, "`proto` applies to `ip` or `ip6` only")),
                };
                let number = self.number("a protocol number", 255)? as u8;
                return Ok(Primitive::IpProto { ip6, number });
            }
        }
        let dir = self.direction();
        match self.peek_word(0) {
            Some("host") | Some("net") => {
                let column = self.column();
                let is_net = self.peek_word(0) == Some("net");
                self.pos += 1;
                if let Some(p) = proto.filter(|p| !matches!(p, Proto::Ip | Proto::Ip6 | Proto::Arp))
                {
                    return Err(self.error_at(
                        column,
                        format!("`{}` cannot qualify a host or net", proto_name(p)),
                    ));
                }
                self.address(proto, dir.unwrap_or(Dir::SrcOrDst), is_net)
            }
            Some("port") | Some("portrange") => {
                let column = self.column();
                let range = self.peek_word(0) == Some("portrange");
                self.pos += 1;
                if let Some(p) = proto.filter(|p| !matches!(p, Proto::Tcp | Proto::Udp)) {
                    return Err(
                        self.error_at(column, format!("`{}` cannot qualify a port", proto_name(p)))
                    );
                }
                let (low, high) = if range {
                    self.port_range()?
                } else {
                    let p = self.number("a port number", 65535)? as u16;
                    (p, p)
                };
                Ok(Primitive::Port {
                    proto,
                    dir: dir.unwrap_or(Dir::SrcOrDst),
                    low,
                    high,
                })
            }
            // `src 10.0.0.1` / `dst fd00::1`: a bare address after a direction means host.
            Some(w) if dir.is_some() && w.contains(['.', ':']) => {
                self.address(proto, dir.unwrap_or(Dir::SrcOrDst), false)
            }
            _ => match (proto, dir) {
                (Some(p), None) => Ok(Primitive::Proto(p)),
                _ => Err(self.expected(if dir.is_some() {
                    "`host`, `net`, `port` or `portrange`"
                } else {
                    "a primitive (host, net, port, portrange, tcp, udp, icmp, icmp6, ip, ip6, arp)"
                })),
            },
        }
    }

    fn direction(&mut self) -> Option<Dir> {
        let first = match self.peek_word(0) {
            Some("src") => Dir::Src,
            Some("dst") => Dir::Dst,
            _ => return None,
        };
        self.pos += 1;
        // `src or dst host X` / `src and dst port N`: the connective binds the qualifiers.
        let second = self.peek_word(1);
        if matches!(self.peek_word(0), Some("or") | Some("and"))
            && matches!(second, Some("src") | Some("dst"))
            && second != Some(if first == Dir::Src { "src" } else { "dst" })
        {
            let both = if self.peek_word(0) == Some("or") {
                Dir::SrcOrDst
            } else {
                Dir::SrcAndDst
            };
            self.pos += 2;
            return Some(both);
        }
        Some(first)
    }

    fn address(
        &mut self,
        qualifier: Option<Proto>,
        dir: Dir,
        is_net: bool,
    ) -> Result<Primitive, FilterError> {
        let what = if is_net {
            "a network (ADDRESS/LENGTH)"
        } else {
            "an IP address"
        };
        let column = self.column();
        let (word, _) = self.next_word(what)?;
        let (addr_text, prefix_text) = match word.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (word.as_str(), None),
        };
        let addr: IpAddr = addr_text.parse().map_err(|_| {
            let hint =
                if addr_text.chars().any(|c| c.is_ascii_alphabetic()) && !addr_text.contains(':') {
                    " (host names are not resolved in filters; give the address)"
                } else {
                    ""
                };
            self.error_at(column, format!("expected {what}, found `{word}`{hint}"))
        })?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix_text {
            Some(p) if is_net => p
                .parse::<u8>()
                .ok()
                .filter(|p| u32::from(*p) <= max)
                .ok_or_else(|| {
                    self.error_at(column, format!("`{p}` is not a prefix length (0..={max})"))
                })?,
            Some(_) => {
                return Err(self.error_at(
                    column,
                    "a host takes an address; use `net` for ADDRESS/LENGTH",
                ))
            }
            None => max as u8,
        };
        if is_net && prefix_text.is_none() {
            return Err(self.error_at(column, format!("expected {what}, found `{word}`")));
        }
        if host_bits_set(addr, prefix) {
            return Err(self.error_at(
                column,
                format!("`{word}` has bits set outside the /{prefix} network"),
            ));
        }
        match (qualifier, addr) {
            (Some(Proto::Ip6), IpAddr::V4(_)) | (Some(Proto::Ip | Proto::Arp), IpAddr::V6(_)) => {
                return Err(self.error_at(
                    column,
                    format!(
                        "`{word}` does not match the `{}` qualifier",
                        proto_name(qualifier.unwrap_or(Proto::Ip))
                    ),
                ));
            }
            _ => {}
        }
        Ok(Primitive::Net {
            qualifier,
            dir,
            addr,
            prefix,
        })
    }

    fn number(&mut self, what: &str, max: u32) -> Result<u32, FilterError> {
        let column = self.column();
        let (word, _) = self.next_word(what).map_err(|_| self.expected(what))?;
        let value = parse_number(&word)
            .ok_or_else(|| self.error_at(column, format!("expected {what}, found `{word}`")))?;
        if value > max {
            return Err(self.error_at(
                column,
                format!("{value} is too large for {what} (at most {max})"),
            ));
        }
        Ok(value)
    }

    fn port_range(&mut self) -> Result<(u16, u16), FilterError> {
        let column = self.column();
        let (word, _) = self.next_word("a port range (LOW-HIGH)")?;
        let bad = || {
            self.error_at(
                column,
                format!("expected a port range (LOW-HIGH), found `{word}`"),
            )
        };
        let (low, high) = word.split_once('-').ok_or_else(bad)?;
        let (low, high) = (
            parse_number(low).ok_or_else(bad)?,
            parse_number(high).ok_or_else(bad)?,
        );
        if low > 65535 || high > 65535 {
            return Err(self.error_at(column, format!("port range `{word}` goes beyond 65535")));
        }
        // tcpdump accepts a reversed range and swaps it.
        Ok((low.min(high) as u16, low.max(high) as u16))
    }

    /// `PROTO[OFFSET(:SIZE)] (& MASK) RELOP VALUE`
    fn bytes(&mut self, proto: Proto) -> Result<Primitive, FilterError> {
        self.eat("[");
        let offset = self.value(false)?;
        let size = if self.eat(":") {
            let column = self.column();
            let size = self.number("a size (1, 2 or 4)", 4)?;
            if !matches!(size, 1 | 2 | 4) {
                return Err(self.error_at(column, "the size must be 1, 2 or 4"));
            }
            size as u8
        } else {
            1
        };
        if !self.eat("]") {
            return Err(self.expected("`]`"));
        }
        let mask = if self.eat("&") {
            Some(self.value(false)?)
        } else {
            None
        };
        let op = match self.peek_text() {
            Some("=") | Some("==") => RelOp::Eq,
            Some("!=") => RelOp::Ne,
            Some(">") => RelOp::Gt,
            Some(">=") => RelOp::Ge,
            Some("<") => RelOp::Lt,
            Some("<=") => RelOp::Le,
            _ => return Err(self.expected("a comparison (=, !=, <, <=, >, >=)")),
        };
        self.pos += 1;
        let value = self.value(false)?;
        Ok(Primitive::Bytes {
            proto,
            offset,
            size,
            mask,
            op,
            value,
        })
    }

    /// A constant: a number, a named constant, or `|` of them; inside parentheses `&` too
    /// (outside, `&` after `]` introduces the mask).
    fn value(&mut self, nested: bool) -> Result<u32, FilterError> {
        let mut v = self.value_atom()?;
        loop {
            if self.eat("|") {
                v |= self.value_atom()?;
            } else if nested && self.eat("&") {
                v &= self.value_atom()?;
            } else {
                return Ok(v);
            }
        }
    }

    fn value_atom(&mut self) -> Result<u32, FilterError> {
        if self.eat("(") {
            let v = self.value(true)?;
            if !self.eat(")") {
                return Err(self.expected("`)`"));
            }
            return Ok(v);
        }
        let column = self.column();
        let (word, _) = self.next_word("a number")?;
        parse_number(&word)
            .or_else(|| named_constant(&word))
            .ok_or_else(|| self.error_at(column, format!("expected a number, found `{word}`")))
    }
}

fn proto_name(p: Proto) -> &'static str {
    match p {
        Proto::Ip => "ip",
        Proto::Ip6 => "ip6",
        Proto::Arp => "arp",
        Proto::Tcp => "tcp",
        Proto::Udp => "udp",
        Proto::Icmp => "icmp",
        Proto::Icmp6 => "icmp6",
    }
}

fn parse_number(word: &str) -> Option<u32> {
    if let Some(hex) = word.strip_prefix("0x").or_else(|| word.strip_prefix("0X")) {
        u32::from_str_radix(hex, 16).ok()
    } else if word.chars().all(|c| c.is_ascii_digit()) {
        word.parse().ok()
    } else {
        None
    }
}

/// tcpdump's named offsets and values (pcap-filter(7)).
fn named_constant(word: &str) -> Option<u32> {
    Some(match word {
        "icmptype" | "icmp6type" => 0,
        "icmpcode" | "icmp6code" => 1,
        "tcpflags" => 13,
        "tcp-fin" => 0x01,
        "tcp-syn" => 0x02,
        "tcp-rst" => 0x04,
        "tcp-push" => 0x08,
        "tcp-ack" => 0x10,
        "tcp-urg" => 0x20,
        "tcp-ece" => 0x40,
        "tcp-cwr" => 0x80,
        "icmp-echoreply" => 0,
        "icmp-unreach" => 3,
        "icmp-sourcequench" => 4,
        "icmp-redirect" => 5,
        "icmp-echo" => 8,
        "icmp-routeradvert" => 9,
        "icmp-routersolicit" => 10,
        "icmp-timxceed" => 11,
        "icmp-paramprob" => 12,
        "icmp-tstamp" => 13,
        "icmp-tstampreply" => 14,
        "icmp6-destinationunreach" => 1,
        "icmp6-packettoobig" => 2,
        "icmp6-timeexceeded" => 3,
        "icmp6-parameterproblem" => 4,
        "icmp6-echo" => 128,
        "icmp6-echoreply" => 129,
        "icmp6-neighborsolicit" => 135,
        "icmp6-neighboradvert" => 136,
        _ => return None,
    })
}

fn host_bits_set(addr: IpAddr, prefix: u8) -> bool {
    match addr {
        IpAddr::V4(a) => {
            let mask = if prefix == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(prefix))
            };
            u32::from(a) & !mask != 0
        }
        IpAddr::V6(a) => {
            let mask = if prefix == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(prefix))
            };
            u128::from(a) & !mask != 0
        }
    }
}

/// Quote an address for a filter expression (IPv4-mapped IPv6 stays IPv6).
pub fn addr_text(addr: IpAddr) -> String {
    match addr {
        IpAddr::V4(a) => Ipv4Addr::to_string(&a),
        IpAddr::V6(a) => Ipv6Addr::to_string(&a),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn parses_qualified_primitives() {
        assert_eq!(
            parse("tcp dst port 80").unwrap(),
            Expr::Primitive(Primitive::Port {
                proto: Some(Proto::Tcp),
                dir: Dir::Dst,
                low: 80,
                high: 80
            })
        );
        assert_eq!(
            parse("src or dst net 10.1.0.0/16").unwrap(),
            Expr::Primitive(Primitive::Net {
                qualifier: None,
                dir: Dir::SrcOrDst,
                addr: "10.1.0.0".parse().unwrap(),
                prefix: 16
            })
        );
        assert!(matches!(
            parse("not (host ::1 or icmp6) && ip6").unwrap(),
            Expr::And(..)
        ));
        assert_eq!(
            parse("tcp[tcpflags] & (tcp-syn|tcp-ack) != 0").unwrap(),
            Expr::Primitive(Primitive::Bytes {
                proto: Proto::Tcp,
                offset: 13,
                size: 1,
                mask: Some(0x12),
                op: RelOp::Ne,
                value: 0
            })
        );
    }

    #[test]
    fn precedence_and_binds_tighter_than_or() {
        let e = parse("icmp or tcp and udp").unwrap();
        assert!(matches!(e, Expr::Or(_, ref r) if matches!(**r, Expr::And(..))));
    }

    #[test]
    fn errors_name_the_column() {
        assert_eq!(
            err("tcp port http"),
            "filter: expected a port number, found `http` at column 10"
        );
        assert_eq!(err("host 10.0.0.1 and"), "filter: expected a primitive (host, net, port, portrange, tcp, udp, icmp, icmp6, ip, ip6, arp), found the end of the expression at column 18");
        assert_eq!(
            err("port 70000"),
            "filter: 70000 is too large for a port number (at most 65535) at column 6"
        );
        assert_eq!(
            err("(tcp"),
            "filter: expected `)`, found the end of the expression at column 5"
        );
        assert_eq!(
            err("net 10.0.0.1/8"),
            "filter: `10.0.0.1/8` has bits set outside the /8 network at column 5"
        );
        assert_eq!(err("host example.com"), "filter: expected an IP address, found `example.com` (host names are not resolved in filters; give the address) at column 6");
        assert_eq!(err("tcp $"), "filter: unexpected character `$` at column 5");
        assert_eq!(
            err("udp host 10.0.0.1"),
            "filter: `udp` cannot qualify a host or net at column 5"
        );
        assert_eq!(err(""), "filter: empty expression at column 1");
        assert_eq!(err("tcp tcp"), "filter: unexpected `tcp` at column 5");
    }
}
