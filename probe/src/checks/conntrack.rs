//! Check `conntrack`: being implemented.

use std::sync::Arc;

use super::Outcome;
use crate::context::Ctx;

pub async fn run(_ctx: Arc<Ctx>) -> Outcome {
    Outcome::Failed("the conntrack check is not implemented in this build".into())
}
