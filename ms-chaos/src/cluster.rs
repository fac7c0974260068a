//! A three-node RabbitMQ cluster on this machine for one test, through
//! `scripts/rabbitmq-cluster.sh`: own node names, ports, data and cookie; torn down (nodes
//! killed, files deleted) in `Drop`, also when the test fails.

use crate::bins::workspace_root;
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

/// How many nodes the cluster has.
pub const NODES: usize = 3;

/// A running cluster; dropping it stops every node.
pub struct RabbitCluster {
    dir: PathBuf,
    /// `AMQP_URL` naming all three nodes, node 1 first.
    pub amqp_url: String,
    /// Node names by number (index 0 is node 1).
    pub node_names: Vec<String>,
}

impl RabbitCluster {
    /// Starts three nodes on free ports and joins them (about 20 s).
    pub fn start() -> anyhow::Result<Self> {
        let base = free_port_block()?;
        let dir = std::env::temp_dir().join(format!("stuffmart-cluster-{base}"));
        let mut cluster = Self {
            dir,
            amqp_url: String::new(),
            node_names: (1..=NODES)
                .map(|n| format!("smq{base}-{n}@localhost"))
                .collect(),
        };
        // From here on, `Drop` stops whatever started.
        cluster.amqp_url = cluster
            .script(&["up", &base.to_string()])?
            .trim()
            .to_owned();
        anyhow::ensure!(
            cluster.amqp_url.split(',').count() == NODES,
            "unexpected AMQP_URL {:?}",
            cluster.amqp_url
        );
        Ok(cluster)
    }

    /// `kill -9` of node `n` (1-based), as a machine that dies.
    pub fn kill(&self, n: usize) -> anyhow::Result<()> {
        self.script(&["kill", &n.to_string()]).map(|_| ())
    }

    /// The node (1-based) that leads quorum queue `queue`, asked of node `via`.
    pub fn leader_of(&self, queue: &str, via: usize) -> anyhow::Result<usize> {
        let out = self.script(&[
            "ctl",
            &via.to_string(),
            "-q",
            "list_queues",
            "name",
            "leader",
            "--formatter",
            "json",
        ])?;
        let rows: Vec<Value> = serde_json::from_str(&out)?;
        let leader = rows
            .iter()
            .find(|r| r["name"] == queue)
            .and_then(|r| r["leader"].as_str())
            .ok_or_else(|| anyhow::anyhow!("queue {queue} not listed by node {via}: {out}"))?;
        self.node_names
            .iter()
            .position(|n| n == leader)
            .map(|i| i + 1)
            .ok_or_else(|| anyhow::anyhow!("leader {leader} is not one of our nodes"))
    }

    /// The queues (leader, members, consumers, messages) and connections as node `via`
    /// sees them, for a failing test's message.
    pub fn describe(&self, via: usize) -> String {
        let n = via.to_string();
        let queues = self.script(&[
            "ctl",
            &n,
            "-q",
            "list_queues",
            "name",
            "type",
            "leader",
            "online",
            "consumers",
            "messages",
        ]);
        let conns = self.script(&[
            "ctl",
            &n,
            "-q",
            "list_channels",
            "name",
            "consumer_count",
            "messages_unacknowledged",
            "messages_unconfirmed",
            "prefetch_count",
        ]);
        let consumers = self.script(&[
            "ctl",
            &n,
            "-q",
            "list_consumers",
            "queue_name",
            "channel_pid",
            "active",
            "activity_status",
            "prefetch_count",
        ]);
        format!(
            "queues:\n{}\nchannels:\n{}\nconsumers:\n{}",
            queues.unwrap_or_else(|e| e.to_string()),
            conns.unwrap_or_else(|e| e.to_string()),
            consumers.unwrap_or_else(|e| e.to_string())
        )
    }

    fn script(&self, args: &[&str]) -> anyhow::Result<String> {
        let (cmd, rest) = args.split_first().unwrap_or((&"", &[]));
        let out = Command::new("bash")
            .arg(workspace_root().join("scripts/rabbitmq-cluster.sh"))
            .arg(cmd)
            .arg(&self.dir)
            .args(rest)
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "rabbitmq-cluster.sh {}: {}\n{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

impl Drop for RabbitCluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // Nodes stopped, their logs kept for the failing test.
            eprintln!(
                "cluster: test failed; node logs under {}",
                self.dir.display()
            );
            for n in 1..=NODES {
                let _ = self.kill(n);
            }
        } else {
            let _ = self.script(&["down"]);
        }
    }
}

/// A base port with the five after it free too (AMQP: base..base+2; Erlang
/// distribution: base+10..base+12), below the ephemeral range.
fn free_port_block() -> anyhow::Result<u16> {
    for _ in 0..50 {
        let base = crate::procs::free_port()?;
        let all_free = [0u16, 1, 2, 10, 11, 12].iter().all(|d| {
            base.checked_add(*d)
                .is_some_and(|p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok())
        });
        if all_free {
            return Ok(base);
        }
    }
    anyhow::bail!("no block of free ports found")
}
