//! A lean Socket.IO v5 / Engine.IO v4 client over one websocket, for thousands of
//! connections: no background task, no JSON parse on the hot path. Each scenario drives
//! the websocket itself and classifies frames with [`classify`].

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::{Instant, timeout_at};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{WebSocketStream, client_async_with_config};

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
        let text = text.as_str();
        if !opened && text.starts_with('0') {
            opened = true;
            let connect = match token {
                Some(t) => format!("40{}", serde_json::json!({ "token": t })),
                None => "40".to_owned(),
            };
            ws.send(Message::text(connect)).await?;
        } else if text == "2" {
            ws.send(Message::text("3")).await?;
        } else if text.starts_with("40") {
            return Ok(ws);
        } else if let Some(err) = text.strip_prefix("44") {
            bail!("connect_error: {err}");
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

/// One Engine.IO/Socket.IO text frame, classified without parsing its JSON.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// Engine.IO ping (`2`): answer with `3`.
    Ping,
    /// An ack (`43<id>[…]`); `status` is 200 for `{data}` and the error status otherwise.
    Ack {
        /// The ack id.
        id: u64,
        /// 200 for a `{data}` ack, the `status` of an error ack (0 if unreadable).
        status: u16,
    },
    /// A push (`42["name",payload]`): the name and the payload's JSON text.
    Event {
        /// Event name.
        name: &'a str,
        /// The first argument's JSON text.
        payload: &'a str,
    },
    /// The server closed the session (`1`) or the namespace (`41`).
    Closed,
    /// Anything else (pong, noop, other packets).
    Other,
}

/// Classifies one text frame.
pub fn classify(text: &str) -> Frame<'_> {
    if text == "2" {
        return Frame::Ping;
    }
    if text == "1" || text == "41" {
        return Frame::Closed;
    }
    if let Some(rest) = text.strip_prefix("43") {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let Ok(id) = rest[..digits].parse::<u64>() else {
            return Frame::Other;
        };
        let body = &rest[digits..];
        let status = if body.starts_with("[{\"data\"") {
            200
        } else {
            status_of(body)
        };
        return Frame::Ack { id, status };
    }
    if let Some(rest) = text.strip_prefix("42[\"")
        && let Some(end) = rest.find('"')
    {
        let name = &rest[..end];
        let payload = rest[end + 1..]
            .strip_prefix(',')
            .and_then(|p| p.strip_suffix(']'))
            .unwrap_or("null");
        return Frame::Event { name, payload };
    }
    Frame::Other
}

/// The number after the first `"status":` in an error ack body (0 if none).
fn status_of(body: &str) -> u16 {
    body.find("\"status\":")
        .map(|i| &body[i + 9..])
        .map(|s| {
            s.bytes()
                .take_while(u8::is_ascii_digit)
                .fold(0u16, |acc, b| {
                    acc.saturating_mul(10).saturating_add(u16::from(b - b'0'))
                })
        })
        .unwrap_or(0)
}

/// Encodes an event with an ack request: `42<id>["event",payload]`.
pub fn encode_event(id: u64, event: &str, payload: &str) -> String {
    format!("42{id}[\"{event}\",{payload}]")
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
    ws.send(Message::text(encode_event(id, event, payload)))
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
            Frame::Ack { id: got, status } if got == id => {
                let body = text.as_str().get(2..).unwrap_or_default();
                let json = body.trim_start_matches(|c: char| c.is_ascii_digit());
                return Ok((status, json.to_owned()));
            }
            Frame::Closed => bail!("server closed the socket"),
            _ => {}
        }
    }
}

/// The first element of an ack array's `data`, e.g. `[{"data":{…}}]` → `{…}`.
pub fn ack_data(ack_json: &str) -> anyhow::Result<serde_json::Value> {
    let v: serde_json::Value = serde_json::from_str(ack_json).context("ack is not JSON")?;
    v.get(0)
        .and_then(|a| a.get("data"))
        .cloned()
        .with_context(|| format!("ack without data: {ack_json}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames() {
        assert_eq!(classify("2"), Frame::Ping);
        assert_eq!(
            classify(r#"437[{"data":{"id":"a","status":"available"}}]"#),
            Frame::Ack { id: 7, status: 200 }
        );
        assert_eq!(
            classify(r#"4312[{"errors":[{"message":"x"}],"status":409}]"#),
            Frame::Ack {
                id: 12,
                status: 409
            }
        );
        assert_eq!(
            classify(r#"42["stuff:updated",{"id":"s","version":3}]"#),
            Frame::Event {
                name: "stuff:updated",
                payload: r#"{"id":"s","version":3}"#
            }
        );
        assert_eq!(classify("41"), Frame::Closed);
        assert_eq!(classify("3"), Frame::Other);
        assert_eq!(
            encode_event(5, "stuff:get", r#"{"id":"x"}"#),
            r#"425["stuff:get",{"id":"x"}]"#
        );
        assert_eq!(source_for(0), Ipv4Addr::new(127, 0, 0, 1));
        assert_eq!(source_for(17), Ipv4Addr::new(127, 0, 0, 2));
        assert_eq!(
            ack_data(r#"[{"data":{"id":"a"}}]"#).ok(),
            Some(serde_json::json!({"id":"a"}))
        );
    }
}
