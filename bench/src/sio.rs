//! A lean Socket.IO v5 / Engine.IO v4 client over one websocket, for thousands of
//! connections: no background task, no JSON parse on the hot path. Each scenario drives
//! the websocket itself and classifies frames with [`classify`].
//!
//! The packet codec is ms-testkit's ([`ms_testkit::packet`]): full parsing for the
//! handshake, [`classify`] and [`packet::encode_event_json`] on the hot path.

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use ms_testkit::packet::{self, EioPacket, SioKind};
use serde_json::Value;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::{Instant, timeout_at};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{WebSocketStream, client_async_with_config};

pub use ms_testkit::packet::{Frame, classify};

/// A connected websocket that has completed the Socket.IO handshake on namespace `/`.
pub type Ws = WebSocketStream<TcpStream>;

/// How many loopback source addresses connections are spread over (more ephemeral ports).
const SOURCE_ADDRESSES: u32 = 16;

/// The loopback source address for connection number `i` (127.0.0.1 … 127.0.0.16).
pub fn source_for(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, 1 + (i as u32 % SOURCE_ADDRESSES) as u8)
}

/// Opens a websocket to the router on `port` from `source`, and connects namespace `/`
/// with `{"token": token}` (or anonymously), all before `deadline`.
pub async fn connect(
    port: u16,
    source: Ipv4Addr,
    token: Option<&str>,
    deadline: Instant,
) -> anyhow::Result<Ws> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from((source, 0)))?;
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let stream = timeout_at(deadline, socket.connect(addr))
        .await
        .context("tcp connect timed out")??;
    stream.set_nodelay(true)?;
    let url = format!("ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket");
    let config = WebSocketConfig::default().read_buffer_size(4096);
    let (mut ws, _) = timeout_at(
        deadline,
        client_async_with_config(url.as_str(), stream, Some(config)),
    )
    .await
    .context("websocket upgrade timed out")??;
    let mut opened = false;
    loop {
        let text = match timeout_at(deadline, ws.next())
            .await
            .context("socket.io handshake timed out")?
        {
            Some(Ok(Message::Text(t))) => t,
            Some(Ok(Message::Close(f))) => bail!("closed during handshake: {f:?}"),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(e.into()),
            None => bail!("websocket ended during handshake"),
        };
        // A frame the codec cannot read is not part of the handshake: skip it.
        let Ok(eio) = packet::parse_eio(text.as_str()) else {
            continue;
        };
        match eio {
            EioPacket::Open(_) if !opened => {
                opened = true;
                let auth = match token {
                    Some(t) => serde_json::json!({ "token": t }),
                    None => Value::Null,
                };
                ws.send(Message::text(packet::encode_connect(&auth)?))
                    .await?;
            }
            EioPacket::Ping("") => ws.send(Message::text("3")).await?,
            EioPacket::Message(m) => match packet::parse_sio(m) {
                Ok(p) if p.kind == SioKind::Connect => return Ok(ws),
                Ok(p) if p.kind == SioKind::ConnectError => {
                    bail!("connect_error: {}", packet::connect_error_message(p.data))
                }
                _ => {}
            },
            _ => {}
        }
    }
}

/// Connects `n` sockets with at most `parallel` handshakes at a time; connection `i` gets
/// `token(i)`. Returns the sockets in order, or the first failure.
pub async fn connect_many(
    port: u16,
    n: usize,
    parallel: usize,
    token: impl Fn(usize) -> Option<String>,
    deadline: Instant,
) -> anyhow::Result<Vec<Ws>> {
    use futures_util::stream::{self, TryStreamExt};
    let tokens: Vec<Option<String>> = (0..n).map(token).collect();
    let started = std::time::Instant::now();
    let sockets: Vec<Ws> = stream::iter(tokens.into_iter().enumerate().map(Ok))
        .map_ok(|(i, t)| async move {
            // A few retries: under a burst the accept queue may overflow for a moment.
            let mut last = None;
            for attempt in 0..3u64 {
                match connect(port, source_for(i), t.as_deref(), deadline).await {
                    Ok(ws) => return Ok(ws),
                    Err(e) => last = Some(e),
                }
                tokio::time::sleep(Duration::from_millis(50 * (attempt + 1))).await;
            }
            Err(last.unwrap_or_else(|| anyhow::anyhow!("connect failed")))
                .with_context(|| format!("socket {i}"))
        })
        .try_buffered(parallel.max(1))
        .try_collect()
        .await?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "  connected {n} sockets in {secs:.1}s ({:.0}/s)",
        n as f64 / secs.max(1e-9)
    );
    Ok(sockets)
}

/// Sends one event with an ack request and waits for its ack, answering pings and
/// ignoring pushes meanwhile. Returns `(status, ack JSON text)`.
pub async fn request(
    ws: &mut Ws,
    id: u64,
    event: &str,
    payload: &str,
    deadline: Instant,
) -> anyhow::Result<(u16, String)> {
    ws.send(Message::text(packet::encode_event_json(id, event, payload)))
        .await?;
    loop {
        let text = match timeout_at(deadline, ws.next())
            .await
            .with_context(|| format!("no ack for {event} in time"))?
        {
            Some(Ok(Message::Text(t))) => t,
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(e.into()),
            None => bail!("websocket ended waiting for {event}"),
        };
        match classify(text.as_str()) {
            Frame::Ping => ws.send(Message::text("3")).await?,
            Frame::Ack {
                id: got,
                status,
                body,
            } if got == id => return Ok((status, body.to_owned())),
            Frame::Closed => bail!("server closed the socket"),
            _ => {}
        }
    }
}

/// The first element of an ack array's `data`, e.g. `[{"data":{…}}]` → `{…}`.
pub fn ack_data(ack_json: &str) -> anyhow::Result<Value> {
    let v: Value = serde_json::from_str(ack_json).context("ack is not JSON")?;
    packet::ack_first_arg(Some(v))
        .ok()
        .and_then(|a| a.get("data").cloned())
        .with_context(|| format!("ack without data: {ack_json}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers() {
        assert_eq!(source_for(0), Ipv4Addr::new(127, 0, 0, 1));
        assert_eq!(source_for(17), Ipv4Addr::new(127, 0, 0, 2));
        assert_eq!(
            ack_data(r#"[{"data":{"id":"a"}}]"#).ok(),
            Some(serde_json::json!({"id":"a"}))
        );
        assert!(ack_data(r#"[{"errors":[],"status":409}]"#).is_err());
        assert!(ack_data(r#"{"data":{"id":"a"}}"#).is_err());
        assert!(ack_data("[]").is_err());
        assert!(ack_data("not json").is_err());
    }
}
