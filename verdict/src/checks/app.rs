//! The `app` check: TLS handshakes and HTTP requests above each target's connect (`--to
//! https://...`, `--http`, `--tls`).

use protocol::{HttpEvidence, HttpOutcome, Open, TlsEvidence, TlsOutcome};

use crate::model::Mark;
use crate::progress::Progress;

impl Progress for TlsEvidence {
    fn progress(&self) -> (Mark, String) {
        let mark = match self.outcome {
            Open::Known(TlsOutcome::Ok) => Mark::Ok,
            _ => Mark::Fail,
        };
        let how = match (&self.outcome, &self.version) {
            (Open::Known(TlsOutcome::Ok), Some(v)) => format!("TLS {v}"),
            (outcome, _) => format!("TLS {outcome} after {}", self.reached),
        };
        (mark, format!("{} {how}", self.address))
    }
}

impl Progress for HttpEvidence {
    fn progress(&self) -> (Mark, String) {
        let (mark, how) = match (&self.outcome, self.status) {
            (Open::Known(HttpOutcome::Response), Some(status)) => {
                let mark = if status < 400 { Mark::Ok } else { Mark::Fail };
                (mark, format!("HTTP {status}"))
            }
            (outcome, _) => (Mark::Fail, format!("HTTP {outcome}")),
        };
        (mark, format!("{} {} {how}", self.address, self.path))
    }
}
