//! Moving a classic queue, left by a StuffMart from before quorum queues, to the quorum
//! queue of the same name — on the broker, with its messages, while the system runs.
//!
//! RabbitMQ cannot change a queue's type or arguments in place: declaring
//! `x-queue-type: quorum` over an existing classic queue fails with `PRECONDITION_FAILED`.
//! [`move_to_quorum`] does what an operator would do by hand, each step safe to repeat
//! after a crash:
//!
//! ```text
//! 1. declare <q>.to-quorum (classic, same arguments and bindings as <q>): new messages
//!    now reach both queues
//! 2. move every message <q> → <q>.to-quorum (get, publish with confirm, then ack)
//! 3. delete <q> if empty (else back to 2), declare <q> as a quorum queue, bound again
//! 4. unbind <q>.to-quorum, move its messages back into <q>, delete it if empty
//! ```
//! Nothing is lost: a message is acked in its old queue only after the broker confirmed
//! its copy. A message can be seen twice (a copy moved while the original was also routed
//! to the parking queue), which every consumer already tolerates (at-least-once delivery).
//! A copy keeps its arguments (TTL, dead-lettering), so a hold still expires into
//! `order.expired` while parked, only later by the time it waited before the move (and
//! dead-lettered at most once while parked: classic queues have no at-least-once mode).

use super::topology::QueueSpec;
use lapin::options::{
    BasicAckOptions, BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions, QueueDeleteOptions,
};
use lapin::protocol::{AMQPErrorKind, AMQPSoftError};
use lapin::types::FieldTable;
use lapin::{Channel, Confirmation, Connection, ErrorKind};

/// How many times a step that found new messages (a publisher was faster) is repeated.
const ATTEMPTS: usize = 20;

/// True when `e` is the broker refusing to redeclare a queue with other arguments
/// (`inequivalent arg`): its type, or arguments a classic queue never had. Which one the
/// broker names depends on the order it compares them in, so any of them counts.
pub fn is_argument_mismatch(e: &lapin::Error) -> bool {
    match e.kind() {
        ErrorKind::ProtocolError(amqp) => {
            matches!(
                amqp.kind(),
                AMQPErrorKind::Soft(AMQPSoftError::PRECONDITIONFAILED)
            ) && amqp.get_message().as_str().contains("inequivalent arg")
        }
        _ => false,
    }
}

/// Declares `spec`; when a queue of that name exists with other arguments (a classic
/// queue), moves it and its messages to the queue `spec` describes first. Returns how
/// many messages were moved.
pub async fn move_to_quorum(conn: &Connection, spec: &QueueSpec) -> lapin::Result<u64> {
    let ch = conn.create_channel().await?;
    match spec.declare(&ch).await {
        Ok(()) => {
            let _ = ch.close(200, "declared".into()).await;
            return Ok(0);
        }
        Err(e) if is_argument_mismatch(&e) => {}
        Err(e) => return Err(e),
    }
    // Classic, so that it can be deleted only when empty (quorum queues cannot).
    let parked = spec.parked_as_classic(format!("{}.to-quorum", spec.name));
    tracing::warn!(queue = %spec.name, via = %parked.name, "moving a classic queue to a quorum queue");
    let ch = confirm_channel(conn).await?;
    parked.declare(&ch).await?;
    let moved = move_all_then_delete(conn, &spec.name, &parked.name).await?;
    spec.declare(&ch).await?;
    for (exchange, key) in &parked.bindings {
        ch.queue_unbind(
            parked.name.as_str().into(),
            exchange.as_str().into(),
            key.as_str().into(),
            FieldTable::default(),
        )
        .await?;
    }
    move_all_then_delete(conn, &parked.name, &spec.name).await?;
    tracing::info!(queue = %spec.name, moved, "classic queue moved to a quorum queue");
    Ok(moved)
}

/// Moves every message of `from` into `to` and deletes `from` once it is empty, moving
/// again (up to [`ATTEMPTS`] times) when a publisher was faster. `from` must be a classic
/// queue (quorum queues cannot be deleted only if empty).
async fn move_all_then_delete(conn: &Connection, from: &str, to: &str) -> lapin::Result<u64> {
    let mut moved = 0;
    for attempt in 0.. {
        // A failed delete closes the channel: each round gets a fresh one.
        let ch = confirm_channel(conn).await?;
        moved += move_all(&ch, from, to).await?;
        let only_if_empty = QueueDeleteOptions {
            if_empty: true,
            ..QueueDeleteOptions::default()
        };
        match ch.queue_delete(from.into(), only_if_empty).await {
            Ok(_) => break,
            Err(e) if attempt < ATTEMPTS => {
                tracing::debug!(queue = from, error = %e, "not empty yet; moving again");
            }
            Err(e) => return Err(e),
        }
    }
    Ok(moved)
}

async fn confirm_channel(conn: &Connection) -> lapin::Result<Channel> {
    let ch = conn.create_channel().await?;
    ch.confirm_select(ConfirmSelectOptions::default()).await?;
    Ok(ch)
}

/// Moves every message of `from` into `to` (default exchange), each acked in `from` only
/// after the broker confirmed its copy in `to`.
async fn move_all(ch: &Channel, from: &str, to: &str) -> lapin::Result<u64> {
    let mut moved = 0;
    while let Some(msg) = ch
        .basic_get(from.into(), BasicGetOptions { no_ack: false })
        .await?
    {
        let delivery = msg.delivery;
        let confirm = ch
            .basic_publish(
                "".into(),
                to.into(),
                BasicPublishOptions::default(),
                &delivery.data,
                delivery.properties.clone(),
            )
            .await?
            .await?;
        if !matches!(confirm, Confirmation::Ack(_)) {
            // Not taken: leave it where it is (unacked messages return to `from` when the
            // channel closes) and let the caller fail; the next start tries again.
            return Err(lapin::Error::from(ErrorKind::InvalidChannelState(
                lapin::ChannelState::Error,
                "a moved message was not confirmed",
            )));
        }
        ch.basic_ack(delivery.delivery_tag, BasicAckOptions::default())
            .await?;
        moved += 1;
    }
    Ok(moved)
}
