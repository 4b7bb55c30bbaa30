//! The `app` check: TLS and HTTP above each target's connect. (Placeholder until the check is
//! written: it fails, saying so, rather than pretend.)

use std::sync::Arc;

use super::Outcome;
use crate::context::Ctx;

pub async fn run(_ctx: Arc<Ctx>) -> Outcome {
    Outcome::Failed("this probe does not implement the app check yet".into())
}
