//! Looking into and poking at the broker directly: queue depths, dead letters, raw
//! publishes (bytes no service would send) and raw RPC requests.

use futures_util::StreamExt;
use lapin::options::{BasicConsumeOptions, BasicGetOptions, BasicPublishOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel};
use ms_common::messaging::Broker;
use serde_json::Value;
use std::time::Duration;

/// Messages ready in `queue` (0 when the queue does not exist).
pub async fn depth(broker: &Broker, queue: &str) -> anyhow::Result<u32> {
    Ok(ms_testkit::queue_ready(broker, queue).await?.unwrap_or(0))
}

/// Depths of several queues, non-empty ones only, as `name=count`.
pub async fn non_empty(broker: &Broker, queues: &[String]) -> anyhow::Result<Vec<String>> {
    let mut v = Vec::new();
    for q in queues {
        let n = depth(broker, q).await?;
        if n > 0 {
            v.push(format!("{q}={n}"));
        }
    }
    Ok(v)
}

/// A message taken off a queue.
#[derive(Debug, Clone)]
pub struct Taken {
    /// Body.
    pub body: Vec<u8>,
    /// String headers (and integers, printed).
    pub headers: Vec<(String, String)>,
}

impl Taken {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

fn header_text(v: &AMQPValue) -> String {
    match v {
        AMQPValue::LongString(s) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
        AMQPValue::ShortString(s) => s.as_str().to_owned(),
        AMQPValue::LongInt(i) => i.to_string(),
        AMQPValue::LongUInt(i) => i.to_string(),
        AMQPValue::LongLongInt(i) => i.to_string(),
        AMQPValue::ShortInt(i) => i.to_string(),
        other => format!("{other:?}"),
    }
}

/// Takes (and acknowledges) every message currently in `queue`.
pub async fn drain(broker: &Broker, queue: &str) -> anyhow::Result<Vec<Taken>> {
    let ch = broker.channel().await?;
    let mut out = Vec::new();
    while let Some(m) = ch
        .basic_get(queue.into(), BasicGetOptions { no_ack: true })
        .await?
    {
        let d = m.delivery;
        let headers = d
            .properties
            .headers()
            .as_ref()
            .map(|h| {
                h.inner()
                    .iter()
                    .map(|(k, v)| (k.as_str().to_owned(), header_text(v)))
                    .collect()
            })
            .unwrap_or_default();
        out.push(Taken {
            body: d.data,
            headers,
        });
    }
    let _ = ch.close(200, "done".into()).await;
    Ok(out)
}

/// Publishes `body` as a persistent message to `exchange` with `routing_key` ("" + a
/// queue name sends straight to that queue) and waits for the broker's confirm.
pub async fn publish_raw(
    broker: &Broker,
    exchange: &str,
    routing_key: &str,
    body: &[u8],
) -> anyhow::Result<()> {
    let ch = broker.channel().await?;
    ch.confirm_select(Default::default()).await?;
    let confirm = ch
        .basic_publish(
            exchange.into(),
            routing_key.into(),
            BasicPublishOptions::default(),
            body,
            BasicProperties::default().with_delivery_mode(2),
        )
        .await?
        .await?;
    anyhow::ensure!(confirm.is_ack(), "broker did not ack the publish");
    let _ = ch.close(200, "done".into()).await;
    Ok(())
}

/// An RPC client that sends arbitrary bodies straight to a service's RPC queue.
pub struct RawRpc {
    ch: Channel,
    replies: lapin::Consumer,
}

impl RawRpc {
    /// Opens a channel with a direct reply-to consumer.
    pub async fn new(broker: &Broker) -> anyhow::Result<Self> {
        let ch = broker.channel().await?;
        let replies = ch
            .basic_consume(
                "amq.rabbitmq.reply-to".into(),
                "".into(),
                BasicConsumeOptions {
                    no_ack: true,
                    ..BasicConsumeOptions::default()
                },
                FieldTable::default(),
            )
            .await?;
        Ok(Self { ch, replies })
    }

    /// Sends `body` to `queue` and returns the parsed reply (`None` after `timeout`).
    pub async fn call(
        &mut self,
        queue: &str,
        body: &[u8],
        timeout: Duration,
    ) -> anyhow::Result<Option<Value>> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        self.ch
            .basic_publish(
                "".into(),
                queue.into(),
                BasicPublishOptions::default(),
                body,
                BasicProperties::default()
                    .with_reply_to("amq.rabbitmq.reply-to".into())
                    .with_correlation_id(id.as_str().into())
                    .with_expiration(timeout.as_millis().to_string().into()),
            )
            .await?;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let next = tokio::time::timeout_at(deadline, self.replies.next()).await;
            let d = match next {
                Err(_) => return Ok(None),
                Ok(None) => anyhow::bail!("reply consumer ended"),
                Ok(Some(d)) => d?,
            };
            let corr = d
                .properties
                .correlation_id()
                .as_ref()
                .map(|s| s.as_str().to_owned());
            if corr.as_deref() != Some(id.as_str()) {
                continue;
            }
            return Ok(Some(serde_json::from_slice(&d.data).map_err(|e| {
                anyhow::anyhow!(
                    "reply is not JSON ({e}): {:?}",
                    String::from_utf8_lossy(&d.data)
                )
            })?));
        }
    }
}

/// Force-closes every broker connection whose name contains `needle`, all at the same
/// moment, so the whole system loses the broker at once rather than one process after the
/// other: one `rabbitmqctl eval` closes them all (a `rabbitmqctl` call costs about a second
/// of CPU); if that is not possible, one `close_connection` per connection, concurrently.
/// Returns how many were closed.
pub async fn close_connections_at_once(needle: &str) -> anyhow::Result<usize> {
    anyhow::ensure!(
        !needle.is_empty()
            && needle
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)),
        "unsafe needle {needle:?}"
    );
    let expr = format!(
        "Needle = <<\"{needle}\">>, \
         Info = fun(P) -> try rabbit_networking:connection_info(P, [client_properties]) catch _:_ -> [] end end, \
         length([rabbit_networking:close_connection(P, \"forced by test\") \
           || P <- rabbit_networking:connections(), \
              {{client_properties, Props}} <- Info(P), \
              {{<<\"connection_name\">>, longstr, Name}} <- Props, \
              binary:match(Name, Needle) =/= nomatch])."
    );
    let out = tokio::process::Command::new("rabbitmqctl")
        .args(["eval", &expr])
        .output()
        .await?;
    if out.status.success()
        && let Ok(n) = String::from_utf8_lossy(&out.stdout).trim().parse::<usize>()
    {
        return Ok(n);
    }
    close_each(needle).await
}

async fn close_each(needle: &str) -> anyhow::Result<usize> {
    let out = tokio::process::Command::new("rabbitmqctl")
        .args([
            "list_connections",
            "pid",
            "client_properties",
            "--no-table-headers",
            "-q",
        ])
        .output()
        .await?;
    anyhow::ensure!(out.status.success(), "rabbitmqctl list_connections failed");
    let text = String::from_utf8_lossy(&out.stdout);
    let pids: Vec<String> = text
        .lines()
        .filter(|l| l.contains(needle))
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect();
    let closes = pids.iter().map(|pid| {
        tokio::process::Command::new("rabbitmqctl")
            .args(["close_connection", pid, "forced by test", "-q"])
            .status()
    });
    let results = futures_util::future::join_all(closes).await;
    Ok(results
        .into_iter()
        .filter(|r| r.as_ref().is_ok_and(|s| s.success()))
        .count())
}
