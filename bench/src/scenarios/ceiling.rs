//! `ceiling`: raw RPC round trips over the broker with the same number in flight as `rtt`,
//! so the router's overhead is a ratio. Two variants, both in the load generator process
//! (client and server), with bodies the size of a real `stuff:get` request and reply:
//!
//! - `lapin`: pure lapin — publish to a durable queue with direct reply-to, a server that
//!   answers each delivery in its own task and then acks (prefetch 64, like a service);
//! - `lib`: ms-common's `RpcClient` against `run_rpc_server` with a trivial handler — the
//!   same messaging code and guarantees the router and the services use (a quorum queue,
//!   requests published with confirms, replies on their own connection), minus HTTP,
//!   Socket.IO, JWT and the store. `lapin` has none of those guarantees: it is the broker's
//!   floor, `lib` the floor of the product's messaging.

use super::{MEASURE, STOP, WARMUP, measured_window, phase};
use crate::procfs::{CpuReport, Tracked, round3};
use crate::stats::Latency;
use async_trait::async_trait;
use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Connection, ConnectionProperties};
use ms_common::ApiError;
use ms_common::auth::{AuthUser, VerifyToken};
use ms_common::messaging::{
    Broker, Names, RpcClient, RpcContext, RpcHandler, RpcRequest, Service, run_rpc_server,
};
use ms_common::shutdown::Shutdown;
use serde::Serialize;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::atomic::AtomicU8;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::time::Instant;

/// Which client/server pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Variant {
    /// Pure lapin.
    Lapin,
    /// ms-common's RpcClient and RPC server.
    Lib,
}

/// What one ceiling point measured.
#[derive(Debug, Clone, Serialize)]
pub struct CeilingResult {
    /// Which client/server pair.
    pub variant: Variant,
    /// Round trips in flight.
    pub in_flight: usize,
    /// Round trips completed in the measured window.
    pub round_trips: u64,
    /// Round trips per second.
    pub per_sec: f64,
    /// Latency of one round trip.
    pub latency: Latency,
    /// CPU per process (the load generator holds client and server).
    pub cpu: CpuReport,
    /// Broker CPU per round trip, µs.
    pub broker_us_per_round_trip: f64,
}

/// A request body shaped like the router's `stuff:get` (a real token's length).
fn request_body() -> Vec<u8> {
    let token = format!("eyJ{}", "x".repeat(290));
    serde_json::json!({
        "action": "stuff:get",
        "token": token,
        "payload": {"id": "0195f0a2-7a3c-7c1e-9a9e-3f2b1c0d4e5f"}
    })
    .to_string()
    .into_bytes()
}

/// A reply shaped like a `stuff:get` answer.
fn reply_value() -> Value {
    serde_json::json!({"data": {
        "id": "0195f0a2-7a3c-7c1e-9a9e-3f2b1c0d4e5f", "title": "rtt item", "description": "bench",
        "priceCents": 1999, "sellerId": "bench-rtt-seller", "status": "available", "version": 1,
        "createdAt": "2026-11-23T20:00:00.123456Z", "updatedAt": "2026-11-23T20:00:00.123456Z"
    }})
}

/// Runs both phases (warmup, measure) over `workers` closed loops that each call `call`.
async fn closed_loop<F, Fut>(
    in_flight: usize,
    warmup: Duration,
    duration: Duration,
    tracked: &Tracked,
    call: F,
) -> anyhow::Result<(u64, Vec<u64>, CpuReport)>
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let flag = Arc::new(AtomicU8::new(WARMUP));
    let mut tasks = Vec::new();
    for _ in 0..in_flight {
        let flag = flag.clone();
        let call = call.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            loop {
                let p = phase(&flag);
                if p == STOP {
                    break;
                }
                let t0 = Instant::now();
                call().await?;
                if p == MEASURE && phase(&flag) == MEASURE {
                    lat.push(t0.elapsed().as_micros() as u64);
                }
            }
            anyhow::Ok(lat)
        }));
    }
    let cpu = measured_window(tracked, &flag, warmup, duration).await;
    let mut all = Vec::new();
    for t in tasks {
        all.extend(tokio::time::timeout(Duration::from_secs(10), t).await???);
    }
    Ok((all.len() as u64, all, cpu))
}

/// Runs one variant at `in_flight`.
pub async fn run(
    amqp_url: &str,
    variant: Variant,
    in_flight: usize,
    warmup: Duration,
    duration: Duration,
) -> anyhow::Result<CeilingResult> {
    println!(
        "ceiling ({variant:?}): {in_flight} RPC round trips in flight straight over RabbitMQ (warmup {warmup:?}, measure {duration:?})"
    );
    let id = uuid::Uuid::new_v4().simple().to_string();
    let prefix = format!("benchceil{}.", &id[..8]);
    let mut tracked = Tracked::default();
    tracked.add("loadgen", std::process::id());
    if let Some(pid) = crate::procfs::broker_pid() {
        tracked.add("rabbitmq", pid);
    }
    let outcome = match variant {
        Variant::Lapin => run_lapin(amqp_url, &prefix, in_flight, warmup, duration, &tracked).await,
        Variant::Lib => run_lib(amqp_url, &prefix, in_flight, warmup, duration, &tracked).await,
    };
    let (n, mut lat, cpu) = outcome?;
    let result = CeilingResult {
        variant,
        in_flight,
        round_trips: n,
        per_sec: round3(n as f64 / cpu.wall_seconds.max(1e-9)),
        latency: Latency::from_micros(&mut lat),
        broker_us_per_round_trip: if n == 0 {
            0.0
        } else {
            round3(cpu.of("rabbitmq") * 1e6 / n as f64)
        },
        cpu,
    };
    println!(
        "  {:.0} round trips/s; {}",
        result.per_sec,
        result.latency.line()
    );
    result.cpu.print("ceiling");
    Ok(result)
}

type Pending = Arc<Mutex<HashMap<String, oneshot::Sender<()>>>>;

async fn run_lapin(
    amqp_url: &str,
    prefix: &str,
    in_flight: usize,
    warmup: Duration,
    duration: Duration,
    tracked: &Tracked,
) -> anyhow::Result<(u64, Vec<u64>, CpuReport)> {
    let queue = format!("{prefix}rpc.ceiling");
    // Two connections, as two processes would have.
    let server_conn = Connection::connect(
        amqp_url,
        ConnectionProperties::default().with_connection_name(format!("{prefix}server").into()),
    )
    .await?;
    let client_conn = Connection::connect(
        amqp_url,
        ConnectionProperties::default().with_connection_name(format!("{prefix}client").into()),
    )
    .await?;
    let sch = server_conn.create_channel().await?;
    sch.queue_declare(
        queue.clone().into(),
        QueueDeclareOptions {
            durable: true,
            ..QueueDeclareOptions::default()
        },
        FieldTable::default(),
    )
    .await?;
    sch.basic_qos(64, BasicQosOptions::default()).await?;
    let mut deliveries = sch
        .basic_consume(
            queue.clone().into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let reply_body = Arc::new(serde_json::to_vec(&reply_value())?);
    let server_ch = sch.clone();
    let server = tokio::spawn(async move {
        while let Some(Ok(d)) = deliveries.next().await {
            let ch = server_ch.clone();
            let body = reply_body.clone();
            tokio::spawn(async move {
                if let (Some(to), Some(corr)) = (
                    d.properties.reply_to().clone(),
                    d.properties.correlation_id().clone(),
                ) {
                    let props = BasicProperties::default()
                        .with_correlation_id(corr)
                        .with_content_type("application/json".into());
                    let _ = ch
                        .basic_publish("".into(), to, BasicPublishOptions::default(), &body, props)
                        .await;
                }
                let _ = d.ack(BasicAckOptions::default()).await;
            });
        }
    });
    let cch = client_conn.create_channel().await?;
    let mut replies = cch
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
    let pending: Pending = Arc::new(Mutex::new(HashMap::new()));
    let router = {
        let pending = pending.clone();
        tokio::spawn(async move {
            while let Some(Ok(d)) = replies.next().await {
                let Some(id) = d
                    .properties
                    .correlation_id()
                    .as_ref()
                    .map(|s| s.to_string())
                else {
                    continue;
                };
                let tx = pending.lock().ok().and_then(|mut p| p.remove(&id));
                if let Some(tx) = tx {
                    let _ = tx.send(());
                }
            }
        })
    };
    let body = Arc::new(request_body());
    let call = {
        let pending = pending.clone();
        let cch = cch.clone();
        let queue = queue.clone();
        move || {
            let pending = pending.clone();
            let cch = cch.clone();
            let queue = queue.clone();
            let body = body.clone();
            async move {
                let id = uuid::Uuid::new_v4().simple().to_string();
                let (tx, rx) = oneshot::channel();
                if let Ok(mut p) = pending.lock() {
                    p.insert(id.clone(), tx);
                }
                let mut headers = FieldTable::default();
                headers.insert(
                    "x-correlation-id".into(),
                    AMQPValue::LongString(id.as_str().into()),
                );
                let props = BasicProperties::default()
                    .with_reply_to("amq.rabbitmq.reply-to".into())
                    .with_correlation_id(id.into())
                    .with_expiration("5000".into())
                    .with_content_type("application/json".into())
                    .with_headers(headers);
                cch.basic_publish(
                    "".into(),
                    queue.into(),
                    BasicPublishOptions::default(),
                    &body,
                    props,
                )
                .await?;
                tokio::time::timeout(Duration::from_secs(5), rx).await??;
                anyhow::Ok(())
            }
        }
    };
    let out = closed_loop(in_flight, warmup, duration, tracked, call).await;
    let _ = sch
        .queue_delete(queue.into(), QueueDeleteOptions::default())
        .await;
    let _ = client_conn.close(200, "bye".into()).await;
    let _ = server_conn.close(200, "bye".into()).await;
    server.abort();
    router.abort();
    out
}

/// Refuses every token (the ceiling's requests carry none).
struct NoTokens;

#[async_trait]
impl VerifyToken for NoTokens {
    async fn verify(&self, _token: &str) -> Result<AuthUser, ApiError> {
        Err(ApiError::unauthorized("Not authorized"))
    }
}

/// Answers every request with the same `stuff:get`-sized item.
struct Echo(Value);

#[async_trait]
impl RpcHandler for Echo {
    type Action = ms_common::contract::StuffAction;

    async fn handle(
        &self,
        _ctx: RpcContext,
        _action: Self::Action,
        _payload: Value,
    ) -> Result<Value, ApiError> {
        Ok(self.0.clone())
    }
}

async fn run_lib(
    amqp_url: &str,
    prefix: &str,
    in_flight: usize,
    warmup: Duration,
    duration: Duration,
    tracked: &Tracked,
) -> anyhow::Result<(u64, Vec<u64>, CpuReport)> {
    let names = Names::new(prefix.to_owned());
    let server_broker = Broker::connect(amqp_url, &format!("{prefix}server"), vec![]).await?;
    let client_broker = Broker::connect(amqp_url, &format!("{prefix}client"), vec![]).await?;
    let queue = names.rpc_queue(Service::Stuff);
    let ch = server_broker.channel().await?;
    // The RPC queue as the services declare it: a quorum queue.
    ms_common::messaging::topology::QueueSpec::new(queue.clone())
        .declare(&ch)
        .await?;
    let shutdown = Shutdown::new();
    let data = reply_value().get("data").cloned().unwrap_or(Value::Null);
    let server = tokio::spawn(run_rpc_server(
        server_broker.clone(),
        names.clone(),
        Service::Stuff,
        64,
        Arc::new(NoTokens),
        Arc::new(Echo(data)),
        shutdown.clone(),
    ));
    let client = RpcClient::new(client_broker.clone(), names, Duration::from_secs(5));
    let req = Arc::new(RpcRequest {
        action: "stuff:get".into(),
        token: None,
        payload: serde_json::json!({"id": "0195f0a2-7a3c-7c1e-9a9e-3f2b1c0d4e5f", "pad": "x".repeat(290)}),
    });
    let call = move || {
        let client = client.clone();
        let req = req.clone();
        async move {
            let cid = uuid::Uuid::new_v4().simple().to_string();
            client
                .call(Service::Stuff, &req, &cid)
                .await
                .map_err(|e| anyhow::anyhow!("rpc failed: {}", e.first_message()))?;
            anyhow::Ok(())
        }
    };
    let out = closed_loop(in_flight, warmup, duration, tracked, call).await;
    shutdown.token.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
    let _ = ch
        .queue_delete(queue.into(), QueueDeleteOptions::default())
        .await;
    client_broker.close().await;
    server_broker.close().await;
    out
}
