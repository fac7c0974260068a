//! Live fan-out: events from the topic exchange pushed to the sockets of this replica.
//!
//! Each router process declares its own exclusive, auto-delete, server-named queue bound
//! to the [`LIVE_PUSHES`] (stuff, order, delivery and sale events), so every replica sees every event and
//! pushes it to its own sockets. Pushes are live notifications, not a log: the queue goes
//! away with the connection, and after a broker failure a new queue is bound (events in
//! between are not replayed; clients refetch on reconnect).
//!
//! | event | push | to |
//! |---|---|---|
//! | `stuff.created` | `stuff:created` ([`contract::Stuff`]) | every socket |
//! | `stuff.updated` | `stuff:updated` ([`contract::Stuff`]) | every socket |
//! | `order.*` | `order:updated` ([`OrderRecord`], the contract's `Order`) | room `user:{userId}` |
//! | `delivery.updated` | `delivery:updated` ([`contract::DeliveryUpdated`]) | the buyer's room `user:{userId}` |
//! | `sale.completed` | `sale:completed` ([`contract::Sale`]) | the seller's room `user:{sellerId}` |

use futures_util::StreamExt;
use lapin::options::{BasicConsumeOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{Channel, Consumer};
use ms_common::contract;
use ms_common::contract::subscriptions::LIVE_PUSHES;
use ms_common::events::{Event, EventEnvelope};
use ms_common::messaging::topology::declare_exchanges;
use ms_common::messaging::{Backoff, Broker, Names};
use ms_common::shutdown::Shutdown;
use socketioxide::SocketIo;

/// A live subscription: the channel must stay open while its consumer is read.
pub struct Subscription {
    channel: Channel,
    consumer: Consumer,
}

/// Declares this replica's queue, binds it and starts consuming (no ack: live pushes).
pub async fn subscribe(broker: &Broker, names: &Names) -> lapin::Result<Subscription> {
    let channel = broker.channel().await?;
    declare_exchanges(&channel, names).await?;
    let queue = channel
        .queue_declare(
            // Server-named, private to this connection, gone when it closes.
            "".into(),
            QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                durable: false,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await?;
    let queue_name = queue.name().clone();
    for key in LIVE_PUSHES.iter().map(|k| k.routing_key()) {
        channel
            .queue_bind(
                queue_name.clone(),
                names.events_exchange().into(),
                key.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
    }
    let consumer = channel
        .basic_consume(
            queue_name.clone(),
            "".into(),
            BasicConsumeOptions {
                no_ack: true,
                exclusive: true,
                ..BasicConsumeOptions::default()
            },
            FieldTable::default(),
        )
        .await?;
    tracing::info!(queue = %queue_name, "fan-out queue bound");
    Ok(Subscription { channel, consumer })
}

/// Pushes events until shutdown, re-subscribing (new queue) after broker failures.
pub async fn run_from(
    broker: Broker,
    names: Names,
    io: SocketIo,
    first: Option<Subscription>,
    shutdown: Shutdown,
) {
    let mut backoff = Backoff::default();
    let mut current = first;
    loop {
        let sub = match current.take() {
            Some(s) => s,
            None => {
                let attempt = tokio::select! {
                    s = subscribe(&broker, &names) => s,
                    _ = shutdown.token.cancelled() => return,
                };
                match attempt {
                    Ok(s) => {
                        backoff.reset();
                        s
                    }
                    Err(e) => {
                        let delay = backoff.next_delay();
                        tracing::warn!(error = %e, ?delay, "fan-out cannot subscribe; retrying");
                        tokio::select! {
                            _ = tokio::time::sleep(delay) => {},
                            _ = shutdown.token.cancelled() => return,
                        }
                        continue;
                    }
                }
            }
        };
        let Subscription {
            channel,
            mut consumer,
        } = sub;
        loop {
            let next = tokio::select! {
                n = consumer.next() => n,
                _ = shutdown.token.cancelled() => {
                    let _ = channel.close(200, "shutdown".into()).await;
                    return;
                }
            };
            match next {
                Some(Ok(delivery)) => {
                    push(&io, delivery.routing_key.as_str(), &delivery.data).await;
                }
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "fan-out consumer failed; re-subscribing");
                    break;
                }
                None => {
                    tracing::warn!("fan-out consumer ended; re-subscribing");
                    break;
                }
            }
        }
    }
}

/// This replica's fan-out: subscribe before serving, then run until shutdown.
pub struct Fanout {
    broker: Broker,
    names: Names,
    io: SocketIo,
    first: tokio::sync::Mutex<Option<Subscription>>,
}

impl Fanout {
    /// A fan-out over `broker` pushing to `io`'s sockets.
    pub fn new(broker: Broker, names: Names, io: SocketIo) -> Self {
        Self {
            broker,
            names,
            io,
            first: tokio::sync::Mutex::new(None),
        }
    }

    /// Declares and binds the queue now, so events published after start-up are not missed.
    pub async fn subscribe_once(&self) -> lapin::Result<()> {
        let sub = subscribe(&self.broker, &self.names).await?;
        *self.first.lock().await = Some(sub);
        Ok(())
    }

    /// Pushes events until shutdown (re-subscribing after broker failures).
    pub async fn run(self, shutdown: Shutdown) {
        let first = self.first.lock().await.take();
        let first = match first {
            Some(s) => s,
            None => match subscribe(&self.broker, &self.names).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "fan-out cannot subscribe yet");
                    return run_from(self.broker, self.names, self.io, None, shutdown).await;
                }
            },
        };
        run_from(self.broker, self.names, self.io, Some(first), shutdown).await
    }
}

/// Pushes one event body to the sockets it concerns; unreadable bodies are logged and skipped.
pub async fn push(io: &SocketIo, routing_key: &str, body: &[u8]) {
    let envelope: EventEnvelope = match serde_json::from_slice(body) {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(routing_key, error = %e, "unreadable event skipped");
            return;
        }
    };
    let Some(ns) = io.of("/") else {
        return;
    };
    let event_id = envelope.id;
    let sent = match envelope.event {
        Event::StuffCreated(s) => ns.emit("stuff:created", &contract::Stuff::from(s)).await,
        Event::StuffUpdated(s) => ns.emit("stuff:updated", &contract::Stuff::from(s)).await,
        Event::OrderCreated(o)
        | Event::OrderCancelled(o)
        | Event::OrderCompleted(o)
        | Event::OrderRefunded(o) => {
            let room = format!("user:{}", o.user_id);
            ns.to(room).emit("order:updated", &o).await
        }
        Event::DeliveryUpdated(d) => {
            let room = format!("user:{}", d.user_id);
            let push = contract::DeliveryUpdated {
                order_id: d.order_id,
            };
            ns.to(room).emit("delivery:updated", &push).await
        }
        Event::SaleCompleted(sale) => {
            let room = format!("user:{}", sale.seller_id);
            ns.to(room)
                .emit("sale:completed", &contract::Sale::from(sale))
                .await
        }
        other => {
            tracing::debug!(event = other.routing_key(), "event not pushed");
            return;
        }
    };
    match sent {
        Ok(()) => tracing::debug!(routing_key, event_id, "pushed"),
        Err(e) => tracing::warn!(routing_key, event_id, error = %e, "push failed"),
    }
}
