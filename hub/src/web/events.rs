//! `GET /events`: the fleet's live changes as server-sent events, for the
//! open page to apply without reloading. Each event is a small delta (an
//! app's status on one cluster, a cluster connecting); a browser that
//! reads too slowly to keep up with the fleet's event buffer is sent one
//! `resync` event (reload the page) and dropped, so it cannot hold memory.

use super::WebState;
use crate::fleet::FleetEvent;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

/// How often an open stream checks that its session is still valid (a
/// revoked token or a sign-out ends the stream within this time).
const SESSION_CHECK: Duration = Duration::from_secs(10);

/// What the stream sends next.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Delta {
    /// A fleet event.
    Event(FleetEvent),
    /// `resync`, then the end: the client fell behind or its session ended.
    Resync(&'static str),
}

/// The SSE event for a delta.
fn sse_of(delta: &Delta) -> Event {
    match delta {
        Delta::Resync(why) => Event::default().event("resync").data(*why),
        Delta::Event(event) => {
            let kind = match event {
                FleetEvent::Cluster { .. } => "cluster",
                FleetEvent::AppStatus { .. } => "app_status",
                FleetEvent::App { .. } => "app",
            };
            let data = serde_json::to_string(event).unwrap_or_else(|_| "{}".into());
            Event::default().event(kind).data(data)
        }
    }
}

/// The deltas of one client: the fleet's events as they come, until the
/// client falls behind the channel's buffer or `still_signed_in` (asked
/// every `check_every`, [`SESSION_CHECK`] when served) says no; then one
/// `Resync` and the end.
fn deltas(
    receiver: tokio::sync::broadcast::Receiver<FleetEvent>,
    stopping: tokio::sync::watch::Receiver<bool>,
    check_every: Duration,
    still_signed_in: impl Fn() -> bool + Clone + Send + 'static,
) -> impl futures_util::Stream<Item = Delta> + Send {
    let start = tokio::time::Instant::now();
    futures_util::stream::unfold(Some((receiver, stopping, start)), move |progress| {
        let still_signed_in = still_signed_in.clone();
        async move {
            let (mut receiver, mut stopping, mut checked) = progress?;
            loop {
                let until_check = check_every.saturating_sub(checked.elapsed());
                // The hub's graceful shutdown waits for open requests: an
                // event stream ends as soon as the hub stops.
                let next = tokio::select! {
                    next = tokio::time::timeout(until_check, receiver.recv()) => next,
                    _ = stopping.wait_for(|stop| *stop) => return None,
                };
                match next {
                    Ok(Ok(event)) => {
                        return Some((Delta::Event(event), Some((receiver, stopping, checked))));
                    }
                    Ok(Err(RecvError::Lagged(missed))) => {
                        tracing::debug!(missed, "web event stream fell behind; resync");
                        return Some((Delta::Resync("fell behind"), None));
                    }
                    Ok(Err(RecvError::Closed)) => return None,
                    Err(_) => {
                        if !still_signed_in() {
                            return Some((Delta::Resync("session ended"), None));
                        }
                        checked = tokio::time::Instant::now();
                    }
                }
            }
        }
    })
}

/// `GET /events`.
pub(super) async fn stream(State(state): State<WebState>, headers: HeaderMap) -> Response {
    let cookie = headers
        .get(header::COOKIE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let now = crate::clock::unix_now();
    if let Err(e) = state.sessions.resolve(cookie.as_deref(), now) {
        return (StatusCode::UNAUTHORIZED, e.to_string()).into_response();
    }
    let sessions = state.sessions.clone();
    let still_signed_in = move || {
        sessions
            .resolve(cookie.as_deref(), crate::clock::unix_now())
            .is_ok()
    };
    let events = futures_util::StreamExt::map(
        deltas(
            state.fleet.subscribe(),
            state.stopping.clone(),
            SESSION_CHECK,
            still_signed_in,
        ),
        |d| Ok::<_, std::convert::Infallible>(sse_of(&d)),
    );
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;
    use tokio::sync::broadcast;

    /// A hub that never stops (the sender is leaked for the test's life).
    fn running() -> tokio::sync::watch::Receiver<bool> {
        let (tx, rx) = tokio::sync::watch::channel(false);
        std::mem::forget(tx);
        rx
    }

    #[tokio::test]
    async fn a_stopping_hub_ends_the_stream() {
        let (_events, rx) = broadcast::channel::<FleetEvent>(2);
        let (stop, stopping) = tokio::sync::watch::channel(false);
        let stream = deltas(rx, stopping, SESSION_CHECK, || true);
        stop.send(true).unwrap();
        let got: Vec<Delta> = tokio::time::timeout(Duration::from_secs(5), stream.collect())
            .await
            .expect("the stream ends when the hub stops");
        assert!(got.is_empty());
    }

    fn connected(cluster: &str) -> FleetEvent {
        FleetEvent::Cluster {
            cluster: cluster.into(),
            connected: true,
        }
    }

    #[tokio::test]
    async fn events_pass_through_in_order() {
        let (tx, rx) = broadcast::channel(8);
        tx.send(connected("a")).unwrap();
        tx.send(connected("b")).unwrap();
        drop(tx);
        let got: Vec<Delta> = deltas(rx, running(), SESSION_CHECK, || true)
            .collect()
            .await;
        assert_eq!(
            got,
            vec![Delta::Event(connected("a")), Delta::Event(connected("b"))]
        );
    }

    #[tokio::test]
    async fn a_client_that_falls_behind_gets_one_resync_and_is_dropped() {
        let (tx, rx) = broadcast::channel(2);
        for i in 0..5 {
            tx.send(connected(&format!("c{i}"))).unwrap();
        }
        let got: Vec<Delta> = tokio::time::timeout(
            Duration::from_secs(5),
            deltas(rx, running(), SESSION_CHECK, || true).collect(),
        )
        .await
        .expect("the stream ends after its resync");
        assert_eq!(got, vec![Delta::Resync("fell behind")]);
        drop(tx);
    }

    #[tokio::test]
    async fn an_ended_session_ends_the_stream() {
        let (tx, rx) = broadcast::channel(2);
        let every = Duration::from_millis(20);
        let got: Vec<Delta> = tokio::time::timeout(
            Duration::from_secs(5),
            deltas(rx, running(), every, || false).collect(),
        )
        .await
        .expect("the stream ends once the session is gone");
        assert_eq!(got, vec![Delta::Resync("session ended")]);
        drop(tx);
    }
}
