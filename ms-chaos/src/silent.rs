//! A TCP proxy in front of the broker that can go *silent*: every connection stays open
//! but nothing is forwarded any more, in either direction. That is what a frozen broker
//! host or a partition that drops packets looks like to a client (no reset, no FIN), as
//! opposed to `ms_testkit::TcpProxy::cut`, which closes the connections.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A running proxy; dropping it ends every connection it holds.
pub struct SilentProxy {
    addr: SocketAddr,
    silent: watch::Sender<bool>,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

/// `host:port` of an AMQP URL (`amqp://user:pass@host:port/vhost`).
pub fn amqp_host_port(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    let host = rest.split('/').next().unwrap_or(rest);
    if host.contains(':') {
        host.to_owned()
    } else {
        format!("{host}:5672")
    }
}

async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, mut silent: watch::Receiver<bool>) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if *silent.borrow() {
            // Hold both halves open and never forward again.
            std::future::pending::<()>().await;
        }
        tokio::select! {
            n = from.read(&mut buf) => match n {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if *silent.borrow() {
                        std::future::pending::<()>().await;
                    }
                    if to.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            },
            changed = silent.changed() => if changed.is_err() { return },
        }
    }
}

impl SilentProxy {
    /// Listens on 127.0.0.1:0 and forwards to `upstream` (`host:port`).
    pub async fn start(upstream: &str) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (silent, rx) = watch::channel(false);
        let tasks: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let upstream = upstream.to_owned();
        let list = tasks.clone();
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(&upstream).await else {
                    continue;
                };
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                let a = tokio::spawn(pump(cr, sw, rx.clone()));
                let b = tokio::spawn(pump(sr, cw, rx.clone()));
                if let Ok(mut l) = list.lock() {
                    l.push(a);
                    l.push(b);
                }
            }
        });
        if let Ok(mut l) = tasks.lock() {
            l.push(accept);
        }
        Ok(Self {
            addr,
            silent,
            tasks,
        })
    }

    /// An AMQP URL through this proxy.
    pub fn amqp_url(&self) -> String {
        format!("amqp://guest:guest@{}/%2f", self.addr)
    }

    /// From now on nothing passes; connections stay open.
    pub fn go_silent(&self) {
        let _ = self.silent.send(true);
    }
}

impl Drop for SilentProxy {
    fn drop(&mut self) {
        if let Ok(l) = self.tasks.lock() {
            for t in l.iter() {
                t.abort();
            }
        }
    }
}
