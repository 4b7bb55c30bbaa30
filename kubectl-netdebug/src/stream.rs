//! Streaming the probe's events from its container log (follow), resuming after a drop by
//! re-reading the log from the start and skipping what was already delivered (by `seq`; the
//! API's `sinceTime` has one-second resolution, too coarse to resume on), and reading the
//! probe's exit code from the container status at the end.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, LogParams};
use tokio::time::Instant;

use crate::connect::ApiTarget;
use crate::error::{api_status, Error, Result};
use crate::events::{EventReader, Item, ReadError};
use crate::wait::{observe, Observation, Started};

/// Reconnections allowed after drops while the container still runs.
pub const MAX_RECONNECTS: u32 = 8;

/// Pause before reconnecting, so a flapping connection does not spin.
const RECONNECT_PAUSE: Duration = Duration::from_millis(250);

/// How long to wait, after `done`, for the container to report its exit code.
pub const EXIT_STATUS_WAIT: Duration = Duration::from_secs(5);

/// The container whose log carries the events.
#[derive(Clone)]
pub struct LogSource<'a> {
    pub client: &'a kube::Client,
    pub target: &'a ApiTarget,
    pub namespace: &'a str,
    pub pod: &'a str,
    pub container: &'a str,
}

/// How the stream ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamOutcome {
    /// The probe's exit code, when the container status reported one in time.
    pub exit_code: Option<i32>,
    /// `None` when `done` arrived; otherwise why the stream ended early.
    pub ended_early: Option<String>,
    pub reconnects: u32,
}

/// Read every event from the container log into `reader`, calling `deliver` as they arrive.
pub async fn stream_events<F: FnMut(Item)>(
    source: &LogSource<'_>,
    reader: &mut EventReader,
    deadline: Instant,
    deliver: F,
) -> Result<StreamOutcome> {
    stream_events_then(source, reader, deadline, EXIT_STATUS_WAIT, deliver).await
}

/// [`stream_events`], waiting at most `exit_wait` after `done` for the exit code. A probe
/// that serves a tunnel lingers after `done` for its peer, so a run that read the log then
/// takes the exit code only if the status already has it.
pub async fn stream_events_then<F: FnMut(Item)>(
    source: &LogSource<'_>,
    reader: &mut EventReader,
    deadline: Instant,
    exit_wait: Duration,
    mut deliver: F,
) -> Result<StreamOutcome> {
    let api: Api<Pod> = Api::namespaced(source.client.clone(), source.namespace);
    let mut reconnects = 0;
    let mut follow = true;
    let mut last_problem = String::from("the log stream ended");
    loop {
        let params = LogParams {
            container: Some(source.container.to_string()),
            follow,
            ..Default::default()
        };
        // Opening the log is an API call: a refusal (RBAC, a vanished pod) is the client's
        // error to report, not a probe that "stopped early"; a transport failure is retried
        // like a dropped stream, and reported as the API failure it is when it persists.
        let stream =
            match tokio::time::timeout_at(deadline, api.log_stream(source.pod, &params)).await {
                Err(_) => return Ok(deadline_passed(reader, reconnects)),
                Ok(Err(e)) => {
                    let refused = api_status(&e).is_some();
                    let err = Error::from_kube(
                        format!(
                            "get pods/log in namespace \"{}\" (pod {}, container {})",
                            source.namespace, source.pod, source.container
                        ),
                        e,
                        Some(source.target),
                    );
                    if refused || reconnects >= MAX_RECONNECTS {
                        return Err(err);
                    }
                    last_problem = format!("opening the log failed: {err}");
                    reconnects += 1;
                    tokio::time::sleep(RECONNECT_PAUSE).await;
                    continue;
                }
                Ok(Ok(stream)) => stream,
            };
        let read = reader.read_from(stream, &mut deliver);
        match tokio::time::timeout_at(deadline, read).await {
            Err(_) => return Ok(deadline_passed(reader, reconnects)),
            Ok(Err(e @ ReadError::Protocol(_))) | Ok(Err(e @ ReadError::LineTooLong)) => {
                return Err(Error::Stream(e.to_string()))
            }
            Ok(Err(ReadError::Io(e))) => last_problem = format!("the log stream failed: {e}"),
            Ok(Ok(())) => {}
        }
        if reader.saw_done() {
            let exit_code =
                wait_for_exit_code(&api, source, deadline.min(Instant::now() + exit_wait)).await;
            return Ok(StreamOutcome {
                exit_code,
                ended_early: None,
                reconnects,
            });
        }
        if !follow {
            // That was the final read of a terminated container's complete log.
            let status = container_status(&api, source).await?;
            return Ok(StreamOutcome {
                exit_code: status.as_ref().and_then(exit_code_of),
                ended_early: Some(format!(
                    "the probe stopped without finishing: {} ({})",
                    describe(status.as_ref()),
                    after_seq(reader)
                )),
                reconnects,
            });
        }
        // The stream dropped before `done`: decide from the container's state.
        match container_status(&api, source).await? {
            Some(Started::Terminated { .. }) => {
                // Its log is complete now: read it once more, without follow.
                follow = false;
            }
            _ if reconnects >= MAX_RECONNECTS => {
                return Ok(StreamOutcome {
                    exit_code: None,
                    ended_early: Some(format!(
                        "{last_problem}; gave up after {reconnects} reconnections ({})",
                        after_seq(reader)
                    )),
                    reconnects,
                })
            }
            _ => {}
        }
        reconnects += 1;
        tokio::time::sleep(RECONNECT_PAUSE).await;
    }
}

/// The stream ended by the client's deadline.
pub fn deadline_passed(reader: &EventReader, reconnects: u32) -> StreamOutcome {
    StreamOutcome {
        exit_code: None,
        ended_early: Some(format!(
            "the client's deadline passed while the probe was still reporting ({})",
            after_seq(reader)
        )),
        reconnects,
    }
}

fn after_seq(reader: &EventReader) -> String {
    match reader.last_seq() {
        Some(s) => format!("last event seq {s}"),
        None => "no event received".into(),
    }
}

fn exit_code_of(s: &Started) -> Option<i32> {
    match s {
        Started::Terminated { exit_code, .. } => Some(*exit_code),
        Started::Running => None,
    }
}

fn describe(s: Option<&Started>) -> String {
    match s {
        Some(Started::Terminated {
            exit_code,
            reason,
            message,
        }) => {
            let mut d = format!("container terminated with exit code {exit_code}");
            if let Some(r) = reason {
                d.push_str(&format!(", reason {r}"));
            }
            if let Some(m) = message.as_deref().map(str::trim).filter(|m| !m.is_empty()) {
                d.push_str(&format!(": {}", m.lines().last().unwrap_or(m)));
            }
            d
        }
        Some(Started::Running) => "container still running".into(),
        None => "container status unknown".into(),
    }
}

async fn container_status(api: &Api<Pod>, source: &LogSource<'_>) -> Result<Option<Started>> {
    let pod = api
        .get(source.pod)
        .await
        .map_err(|e| Error::from_kube(format!("get pod {}", source.pod), e, Some(source.target)))?;
    Ok(match observe(&pod, source.container) {
        Observation::Started(s) => Some(s),
        _ => None,
    })
}

/// After `done` the probe exits at once; give the kubelet a moment (until `until`) to report
/// the exit code. The exit code adds to the verdict but the events are already complete, so
/// not getting it is not an error. The status is read at least once.
async fn wait_for_exit_code(api: &Api<Pod>, source: &LogSource<'_>, until: Instant) -> Option<i32> {
    loop {
        if let Ok(Some(Started::Terminated { exit_code, .. })) = container_status(api, source).await
        {
            return Some(exit_code);
        }
        if Instant::now() + RECONNECT_PAUSE >= until {
            return None;
        }
        tokio::time::sleep(RECONNECT_PAUSE).await;
    }
}
