//! Messaging on RabbitMQ: topology, connection, publisher, consumer, RPC, outbox relay.

pub mod broker;
pub mod consumer;
pub mod migrate;
pub mod permissions;
pub mod publisher;
pub mod relay;
pub mod retry;
pub mod rpc;
pub mod topology;

pub use broker::{Backoff, Broker};
pub use consumer::{ConsumerSpec, HandleError, Handler, run_consumer};
pub use publisher::{Outgoing, PublishError, Publisher};
pub use relay::OutboxRelay;
pub use retry::RetryPolicy;
pub use rpc::{
    RpcClient, RpcContext, RpcHandler, RpcKeySource, RpcRequest, parse_payload, run_rpc_server,
};
pub use topology::{Declare, Names, Service, ServiceTopology};
