//! The tcpdump filter language the capture accepts, compiled to classic BPF for a cooked
//! packet socket. Pure code (no I/O, no platform APIs), so the client checks a user's
//! `--capture-filter` with the very compiler the probe loads it with, before anything is
//! injected into a pod.
//!
//! `filter` parses (column-accurate errors), `compile` generates the program, `bpf` holds
//! the instructions and a `tcpdump -d`-style listing.

pub mod bpf;
pub mod compile;
pub mod filter;

/// Parse and compile `expression` as the probe will for `snaplen`; the error is the one the
/// probe would report (the parser's message and column, or the compiler's limit).
pub fn check(expression: &str, snaplen: u32) -> Result<(), String> {
    let expr = filter::parse(expression).map_err(|e| e.to_string())?;
    compile::compile(&expr, snaplen)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn check_gives_the_parsers_words() {
        assert!(super::check("tcp port 80 and host 10.0.0.1", 128).is_ok());
        let err = super::check("tcp port eighty", 128).unwrap_err();
        assert!(err.contains("column"), "{err}");
    }
}
