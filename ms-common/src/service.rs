//! The start-up and shutdown sequence every backend service shares.
//!
//! A service builds its store and handlers, then [`ServiceRuntime`] connects to RabbitMQ,
//! declares the service's topology, and runs its RPC server, event consumer and outbox relay
//! as tasks. [`ServiceHandle::stop`] stops taking messages, drains in-flight ones, closes.

use crate::auth::VerifyToken;
use crate::config::CommonConfig;
use crate::contract::subscriptions;
use crate::messaging::OutboxRelay;
use crate::messaging::{
    Broker, ConsumerSpec, Handler, Names, Publisher, RpcHandler, Service, ServiceTopology,
};
use crate::shutdown::Shutdown;
use crate::storage::OutboxStore;
use serde::de::DeserializeOwned;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

/// A connected service whose tasks are being assembled.
pub struct ServiceRuntime {
    /// Shared settings.
    pub config: CommonConfig,
    /// Which service.
    pub service: Service,
    /// Queue names under the configured prefix.
    pub names: Names,
    /// The process's connection.
    pub broker: Broker,
    /// Stop signal and in-flight tracker.
    pub shutdown: Shutdown,
    topology: ServiceTopology,
    tasks: Vec<JoinHandle<()>>,
}

impl ServiceRuntime {
    /// Connects and declares the service's queues, its events queue bound to the events it
    /// consumes ([`subscriptions::consumed_by`]).
    pub async fn connect(config: CommonConfig, service: Service) -> anyhow::Result<Self> {
        let names = Names::new(config.amqp_prefix.clone());
        let topology = ServiceTopology {
            names: names.clone(),
            service,
            bindings: subscriptions::consumed_by(service)
                .iter()
                .map(|k| k.routing_key().to_owned())
                .collect(),
            retry: config.retry_policy(),
            rpc: true,
        };
        let broker = Broker::connect(
            &config.amqp_url,
            &format!("{}ms-{}", config.amqp_prefix, service.as_str()),
            vec![Arc::new(topology.clone())],
        )
        .await?;
        Ok(Self {
            config,
            service,
            names,
            broker,
            shutdown: Shutdown::new(),
            topology,
            tasks: Vec::new(),
        })
    }

    /// Serves the service's RPC queue with `handler`, verifying callers with `verifier`.
    pub fn serve_rpc<H: RpcHandler>(&mut self, verifier: Arc<dyn VerifyToken>, handler: Arc<H>) {
        let fut = crate::messaging::run_rpc_server(
            self.broker.clone(),
            self.names.clone(),
            self.service,
            self.config.prefetch,
            verifier,
            handler,
            self.shutdown.clone(),
        );
        self.tasks.push(tokio::spawn(fut));
    }

    /// Consumes the service's events queue with `handler`.
    pub fn consume_events<T, H>(&mut self, handler: Arc<H>)
    where
        T: DeserializeOwned + Send + 'static,
        H: Handler<T>,
    {
        let queue = self.names.events_queue(self.service);
        self.consume_queue::<T, H>(queue, handler);
    }

    /// Consumes another queue of the service (declared by the service, with its retry
    /// ladder from `topology::declare_retry_queues` under the configured policy).
    pub fn consume_queue<T, H>(&mut self, queue: String, handler: Arc<H>)
    where
        T: DeserializeOwned + Send + 'static,
        H: Handler<T>,
    {
        let spec = ConsumerSpec {
            names: self.names.clone(),
            service: self.service,
            queue,
            prefetch: self.config.prefetch,
            retry: self.topology.retry,
        };
        let fut = crate::messaging::run_consumer::<T, H>(
            self.broker.clone(),
            spec,
            handler,
            self.shutdown.clone(),
        );
        self.tasks.push(tokio::spawn(fut));
    }

    /// Runs the outbox relay; the store wakes it on every commit.
    pub fn relay_outbox(&mut self, store: Arc<dyn OutboxStore>) {
        let relay = OutboxRelay {
            store,
            publisher: Arc::new(Publisher::new(self.broker.clone())),
            exchange: self.names.events_exchange(),
        };
        self.tasks
            .push(tokio::spawn(relay.run(self.shutdown.clone())));
    }

    /// Spawns any other task that should stop with the service.
    pub fn spawn(&mut self, fut: impl std::future::Future<Output = ()> + Send + 'static) {
        self.tasks.push(tokio::spawn(fut));
    }

    /// Everything is running; the handle stops it. Serves `/healthz` and `/readyz` on
    /// `HEALTH_PORT` when configured (for container probes).
    pub async fn started(mut self) -> anyhow::Result<ServiceHandle> {
        if let Some(port) = self.config.health_port {
            let listener = tokio::net::TcpListener::bind(("0.0.0.0", port)).await?;
            let app = health_routes(self.broker.clone());
            let token = self.shutdown.token.clone();
            self.tasks.push(tokio::spawn(async move {
                let served = axum::serve(listener, app)
                    .with_graceful_shutdown(async move { token.cancelled().await })
                    .await;
                if let Err(e) = served {
                    tracing::warn!(error = %e, "health server stopped");
                }
            }));
        }
        Ok(self.finish())
    }

    fn finish(self) -> ServiceHandle {
        tracing::info!(service = self.service.as_str(), "started");
        ServiceHandle {
            service: self.service,
            broker: self.broker,
            shutdown: self.shutdown,
            tasks: self.tasks,
        }
    }
}

/// `/healthz` (alive) and `/readyz` (connected to RabbitMQ) for probes.
pub fn health_routes(broker: Broker) -> axum::Router {
    use axum::routing::get;
    axum::Router::new()
        .route(
            "/healthz",
            get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }),
        )
        .route(
            "/readyz",
            get(move || {
                let broker = broker.clone();
                async move {
                    if broker.is_connected() {
                        Ok(axum::Json(serde_json::json!({"status": "ready"})))
                    } else {
                        Err(crate::ApiError::unavailable())
                    }
                }
            }),
        )
}

/// A running service.
pub struct ServiceHandle {
    /// Which service.
    pub service: Service,
    /// Its connection (tests check readiness through it).
    pub broker: Broker,
    /// Its stop signal.
    pub shutdown: Shutdown,
    tasks: Vec<JoinHandle<()>>,
}

impl ServiceHandle {
    /// Stops consuming, waits (bounded) for in-flight messages to be handled and acked, closes.
    /// Returns within about 14 s whatever the broker does (a silent broker never answers
    /// the close handshake): 10 s drain, 2 s for the tasks together, 2 s for the close.
    pub async fn stop(self) {
        self.shutdown.drain(Duration::from_secs(10)).await;
        let aborts: Vec<_> = self.tasks.iter().map(|t| t.abort_handle()).collect();
        let all = futures_util::future::join_all(self.tasks);
        if tokio::time::timeout(Duration::from_secs(2), all)
            .await
            .is_err()
        {
            tracing::warn!("shutdown: tasks still running after 2 s; aborting them");
            aborts.iter().for_each(tokio::task::AbortHandle::abort);
        }
        if tokio::time::timeout(Duration::from_secs(2), self.broker.close())
            .await
            .is_err()
        {
            tracing::warn!("shutdown: the broker did not answer the close in 2 s");
        }
        tracing::info!(service = self.service.as_str(), "stopped");
    }

    /// Runs until SIGINT/SIGTERM, then stops gracefully (what `main` does).
    pub async fn run_until_signalled(self) {
        self.shutdown.signalled().await;
        self.stop().await;
    }
}
