//! Docker's events, as the daemon needs them.
//!
//! The stream is opened with `since` set a little before the listing that
//! follows it, so an event that happens between the subscription and the
//! listing is replayed rather than lost (bollard subscribes only when the
//! stream is first polled, so there is no other way to know the
//! subscription is live). Replayed events are harmless: handling an event
//! means re-inspecting the container it names.

use std::collections::HashMap;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bollard::models::EventMessage;
use bollard::query_parameters::EventsOptions;
use bollard::Docker;
use futures_util::StreamExt;
use tokio::sync::mpsc;

/// What an event asks the daemon to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Re-inspect this container (start, rename, unpause).
    Container(String),
    /// Re-inspect this container if it is running (network connect or
    /// disconnect). Docker connects a container's networks before it starts
    /// it, and inspecting it then waits for the whole start; its `start`
    /// event follows anyway.
    Attached(String),
    /// This container is gone (die, destroy).
    Gone(String),
    /// Networks were created or removed: list everything again.
    Networks,
}

/// One event with when Docker says it happened (ns since the epoch) and
/// when the daemon received it.
#[derive(Debug, Clone)]
pub struct Event {
    /// What to do.
    pub change: Change,
    /// Docker's `timeNano`.
    pub time_nano: i64,
    /// Received at.
    pub received: Instant,
}

/// What a Docker event means for cordon, if anything.
pub fn classify(ev: &EventMessage) -> Option<Change> {
    let action = ev.action.as_deref()?;
    let attrs: HashMap<String, String> = ev
        .actor
        .as_ref()
        .and_then(|a| a.attributes.clone())
        .unwrap_or_default();
    let id = ev.actor.as_ref().and_then(|a| a.id.clone());
    let typ = ev.typ.map(|t| t.to_string()).unwrap_or_default();
    match (typ.as_str(), action) {
        ("container", "start" | "rename" | "unpause" | "restart") => id.map(Change::Container),
        ("container", "die" | "destroy" | "stop") => id.map(Change::Gone),
        ("network", "connect" | "disconnect") => {
            attrs.get("container").cloned().map(Change::Attached)
        }
        ("network", "create" | "destroy") => Some(Change::Networks),
        _ => None,
    }
}

/// Now, in seconds since the epoch, minus `back` seconds: the `since` of a
/// new subscription.
pub fn since(back: u64) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    now.saturating_sub(back).to_string()
}

/// Subscribes to container and network events from `since` on and pumps
/// them into `tx`; returns (ending the task) when the stream ends or fails,
/// after sending `Err` with the reason.
pub async fn pump(docker: Docker, since: String, tx: mpsc::UnboundedSender<Result<Event, String>>) {
    let mut filters = HashMap::new();
    filters.insert(
        "type".to_string(),
        vec!["container".into(), "network".into()],
    );
    let mut stream = docker.events(Some(EventsOptions {
        since: Some(since),
        filters: Some(filters),
        ..Default::default()
    }));
    while let Some(item) = stream.next().await {
        match item {
            Ok(ev) => {
                if let Some(change) = classify(&ev) {
                    let e = Event {
                        change,
                        time_nano: ev.time_nano.unwrap_or(0),
                        received: Instant::now(),
                    };
                    if tx.send(Ok(e)).is_err() {
                        return;
                    }
                }
            }
            Err(e) => {
                let _ = tx.send(Err(format!("Docker event stream failed: {e}")));
                return;
            }
        }
    }
    let _ = tx.send(Err("Docker closed the event stream".into()));
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::{EventActor, EventMessageTypeEnum};

    fn ev(
        typ: EventMessageTypeEnum,
        action: &str,
        id: &str,
        attrs: &[(&str, &str)],
    ) -> EventMessage {
        EventMessage {
            typ: Some(typ),
            action: Some(action.into()),
            actor: Some(EventActor {
                id: Some(id.into()),
                attributes: Some(
                    attrs
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn events_map_to_changes() {
        use EventMessageTypeEnum::*;
        assert_eq!(
            classify(&ev(CONTAINER, "start", "c1", &[])),
            Some(Change::Container("c1".into()))
        );
        assert_eq!(
            classify(&ev(CONTAINER, "die", "c1", &[])),
            Some(Change::Gone("c1".into()))
        );
        assert_eq!(
            classify(&ev(CONTAINER, "destroy", "c1", &[])),
            Some(Change::Gone("c1".into()))
        );
        assert_eq!(classify(&ev(CONTAINER, "kill", "c1", &[])), None);
        assert_eq!(classify(&ev(CONTAINER, "exec_start: sh", "c1", &[])), None);
        assert_eq!(
            classify(&ev(NETWORK, "connect", "n1", &[("container", "c2")])),
            Some(Change::Attached("c2".into()))
        );
        assert_eq!(
            classify(&ev(NETWORK, "create", "n1", &[])),
            Some(Change::Networks)
        );
        assert_eq!(classify(&ev(IMAGE, "pull", "x", &[])), None);
    }
}
