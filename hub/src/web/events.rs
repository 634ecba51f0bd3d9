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

/// What the stream does next.
enum Step {
    /// Send this event.
    Send(Event),
    /// Send `resync` and end: the client fell behind or the session ended.
    Resync(&'static str),
}

/// The SSE event for a fleet event.
fn event_of(event: &FleetEvent) -> Event {
    let kind = match event {
        FleetEvent::Cluster { .. } => "cluster",
        FleetEvent::AppStatus { .. } => "app_status",
        FleetEvent::App { .. } => "app",
    };
    let data = serde_json::to_string(event).unwrap_or_else(|_| "{}".into());
    Event::default().event(kind).data(data)
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
    let receiver = state.fleet.subscribe();
    let sessions = state.sessions.clone();
    let start = tokio::time::Instant::now();
    let events = futures_util::stream::unfold(Some((receiver, start)), move |progress| {
        let sessions = sessions.clone();
        let cookie = cookie.clone();
        async move {
            let (mut receiver, mut checked) = progress?;
            let step = loop {
                let until_check = SESSION_CHECK.saturating_sub(checked.elapsed());
                match tokio::time::timeout(until_check, receiver.recv()).await {
                    Ok(Ok(event)) => break Step::Send(event_of(&event)),
                    Ok(Err(RecvError::Lagged(missed))) => {
                        tracing::debug!(missed, "web event stream fell behind; resync");
                        break Step::Resync("fell behind");
                    }
                    Ok(Err(RecvError::Closed)) => return None,
                    Err(_) => {
                        let now = crate::clock::unix_now();
                        if sessions.resolve(cookie.as_deref(), now).is_err() {
                            break Step::Resync("session ended");
                        }
                        checked = tokio::time::Instant::now();
                    }
                }
            };
            match step {
                Step::Send(event) => Some((
                    Ok::<_, std::convert::Infallible>(event),
                    Some((receiver, checked)),
                )),
                Step::Resync(why) => Some((Ok(Event::default().event("resync").data(why)), None)),
            }
        }
    });
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}
