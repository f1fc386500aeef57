//! Events: what ctct-sync announces on its own, not the answer to a command. They travel on
//! the results exchange under the routing key `event.<type>` (`event.mirror.failed`), so a
//! binding for command results (`contact.#`, `mirror.#`, `account.#`) never receives them and
//! `event.#` receives them all. An event has a `type` and no `command_id` or `outcome`.
//!
//! Earlier versions published events under their bare type (`mirror.failed`). Until the next
//! release every event is also published under that old key, in its old form, with the header
//! `x-ctct-deprecated`; docs/messages.md says so.

use lapin::types::AMQPValue;
use serde_json::Value;

use super::publisher::{Outgoing, PublishError, publish};

/// `account.reauth_required`: an account needs a person to authorise it again.
pub const REAUTH_REQUIRED: &str = "account.reauth_required";
/// `mirror.completed`: a mirror run finished its pass.
pub const MIRROR_COMPLETED: &str = "mirror.completed";
/// `mirror.failed`: a mirror run failed or was interrupted.
pub const MIRROR_FAILED: &str = "mirror.failed";

/// Every event type ctct-sync publishes.
pub const EVENT_TYPES: [&str; 3] = [REAUTH_REQUIRED, MIRROR_COMPLETED, MIRROR_FAILED];

/// The routing-key prefix of every event.
pub const PREFIX: &str = "event.";

/// The header marking the copy of an event under its old, deprecated routing key.
pub const DEPRECATED_HEADER: &str = "x-ctct-deprecated";

/// The routing key of an event type: `event.<type>`.
pub fn routing_key(event_type: &str) -> String {
    format!("{PREFIX}{event_type}")
}

/// One event to publish.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub event_type: &'static str,
    /// The body under `event.<type>`.
    pub body: Value,
    /// The body of earlier versions, published under the bare type (deprecated); `None` when
    /// it is the same as `body`.
    pub legacy_body: Option<Value>,
}

impl Event {
    pub fn new(event_type: &'static str, body: Value) -> Self {
        Self {
            event_type,
            body,
            legacy_body: None,
        }
    }
}

/// Publishes `event` on `exchange` (persistent, confirmed, not mandatory: having no listener
/// is the users' choice): under `event.<type>`, then the deprecated copy under `<type>`.
/// At least once: after an error the caller publishes it again, both copies.
pub async fn publish_event(
    channel: &lapin::Channel,
    exchange: &str,
    event: &Event,
) -> Result<(), PublishError> {
    let key = routing_key(event.event_type);
    let body = serde_json::to_vec(&event.body).unwrap_or_default();
    let mut message = Outgoing::json(exchange, &key, &body);
    message.mandatory = false;
    publish(channel, message).await?;

    let legacy =
        serde_json::to_vec(event.legacy_body.as_ref().unwrap_or(&event.body)).unwrap_or_default();
    let note = format!(
        "routing key {} is deprecated and goes away in the next release; bind {key} instead",
        event.event_type
    );
    let mut message = Outgoing::json(exchange, event.event_type, &legacy);
    message.mandatory = false;
    message.headers = vec![(DEPRECATED_HEADER, AMQPValue::LongString(note.into()))];
    publish(channel, message).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_routing_keys_start_with_event_and_never_name_a_command_type() {
        for t in EVENT_TYPES {
            let key = routing_key(t);
            assert!(key.starts_with("event."), "{key}");
            assert!(!crate::command::COMMAND_TYPES.contains(&t), "{t}");
        }
        assert_eq!(routing_key(MIRROR_FAILED), "event.mirror.failed");
        assert!(
            crate::command::COMMAND_TYPES
                .iter()
                .all(|t| !t.starts_with("event.") && *t != "event"),
            "no command type could be mistaken for an event"
        );
    }
}
