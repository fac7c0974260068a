//! End-to-end tests of `SioClient` against a real socketioxide server on axum,
//! plus a scripted raw-websocket server for wire-level edge cases.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt;
use std::time::Duration;

use futures_util::future::join_all;
use futures_util::{SinkExt, StreamExt};
use ms_testkit::{SioClient, SioError};
use serde_json::{Value, json};
use socketioxide::SocketIo;
use socketioxide::extract::{AckSender, Data, SocketRef, State, TryData};
use socketioxide::handler::ConnectHandler;
use socketioxide::socket::DisconnectReason;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

const WAIT: Duration = Duration::from_secs(5);
const SHORT: Duration = Duration::from_millis(300);

/// Error returned by the connect middleware; its Display is the connect_error message.
#[derive(Debug)]
struct NotAuthorized;

impl fmt::Display for NotAuthorized {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Not authorized")
    }
}

impl std::error::Error for NotAuthorized {}

/// Server-side record of disconnected socket ids.
#[derive(Clone)]
struct DisconnectLog(mpsc::UnboundedSender<String>);

async fn auth_middleware(TryData(auth): TryData<Value>) -> Result<(), NotAuthorized> {
    let token = auth
        .ok()
        .and_then(|a| a.get("token").and_then(Value::as_str).map(str::to_owned));
    if token.as_deref() == Some("bad") {
        Err(NotAuthorized)
    } else {
        Ok(())
    }
}

async fn on_connect(s: SocketRef) {
    // Every handler is registered synchronously before anything is awaited.
    s.on(
        "echo",
        async |Data(payload): Data<Value>, ack: AckSender| {
            ack.send(&payload).ok();
        },
    );
    s.on("shout", async |s: SocketRef, Data(payload): Data<Value>| {
        s.emit("news", &payload).ok();
    });
    s.on(
        "burst",
        async |s: SocketRef, Data(pushes): Data<Vec<(String, Value)>>| {
            for (event, data) in pushes {
                s.emit(event, &data).ok();
            }
        },
    );
    s.on("noack", async |_s: SocketRef| {});
    s.on("kick", async |s: SocketRef| {
        s.emit("bye", "see you").ok();
        s.disconnect().ok();
    });
    s.on_disconnect(
        async |s: SocketRef, _reason: DisconnectReason, State(log): State<DisconnectLog>| {
            log.0.send(s.id.to_string()).ok();
        },
    );
    s.emit("hello", &json!({ "sid": s.id.to_string() })).ok();
}

struct TestServer {
    url: String,
    disconnects: mpsc::UnboundedReceiver<String>,
}

async fn start_server(heartbeat: Option<Duration>) -> TestServer {
    let (tx, disconnects) = mpsc::unbounded_channel();
    let mut builder = SocketIo::builder().with_state(DisconnectLog(tx));
    if let Some(every) = heartbeat {
        builder = builder.ping_interval(every).ping_timeout(every);
    }
    let (layer, io) = builder.build_layer();
    io.ns("/", on_connect.with(auth_middleware));
    let app = axum::Router::new().layer(layer);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        axum::serve(listener, app).await.ok();
    });
    TestServer {
        url: format!("http://{addr}"),
        disconnects,
    }
}

#[tokio::test]
async fn connects_with_and_without_token() {
    let server = start_server(None).await;

    let client = SioClient::connect(&server.url, Some("good"))
        .await
        .expect("connect");
    assert!(client.is_connected());
    assert!(!client.sid().is_empty());
    // The push emitted inside the server's connect handler is not lost.
    let hello = client.next_event("hello", WAIT).await.expect("hello");
    assert_eq!(hello["sid"], json!(client.sid()));

    let anonymous = SioClient::connect(&server.url, None)
        .await
        .expect("connect");
    assert!(anonymous.is_connected());
    assert_ne!(anonymous.sid(), client.sid());

    let custom = SioClient::connect_with_auth(&server.url, json!({"token": "x", "extra": 1}))
        .await
        .expect("connect");
    assert!(custom.is_connected());
}

#[tokio::test]
async fn connect_error_carries_server_message() {
    let server = start_server(None).await;
    let err = SioClient::connect(&server.url, Some("bad"))
        .await
        .expect_err("must be refused");
    assert_eq!(err, SioError::ConnectError("Not authorized".to_owned()));
}

#[tokio::test]
async fn transport_failure_is_connect_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let err = SioClient::connect(&format!("http://{addr}"), None)
        .await
        .expect_err("nothing listens there");
    assert!(matches!(err, SioError::Connect(_)), "{err:?}");
}

#[tokio::test]
async fn fifty_concurrent_acks_are_routed_correctly() {
    let server = start_server(None).await;
    let client = SioClient::connect(&server.url, Some("good"))
        .await
        .expect("connect");

    let calls = (0..50).map(|i| {
        let payload = match i % 5 {
            0 => json!({ "i": i, "nested": { "list": [i, i + 1] } }),
            1 => json!(format!("text-{i}")),
            2 => json!(i),
            3 => json!([i, "array", null]),
            _ => json!({ "i": i, "unicode": "héllo ✓" }),
        };
        let client = &client;
        async move {
            let answer = client
                .emit_with_ack("echo", payload.clone(), WAIT)
                .await
                .expect("ack");
            (payload, answer)
        }
    });
    for (sent, answered) in join_all(calls).await {
        assert_eq!(sent, answered);
    }
}

#[tokio::test]
async fn pushes_are_buffered_and_filtered() {
    let server = start_server(None).await;
    let client = SioClient::connect(&server.url, Some("good"))
        .await
        .expect("connect");
    client.next_event("hello", WAIT).await.expect("hello");

    // One handler emits all of these, so they reach the client in this order.
    let burst = json!([
        ["news", { "n": 1 }],
        ["other", { "n": 1 }],
        ["news", { "n": 2 }],
        ["other", { "n": 2 }],
        ["news", { "n": 3 }],
        ["other", { "n": 3 }],
        ["news", { "n": 4 }],
        ["last", null],
    ]);
    client.emit("burst", burst).expect("emit");

    // next_event takes the first "news" and leaves everything else buffered.
    let first = client.next_event("news", WAIT).await.expect("news 1");
    assert_eq!(first, json!({ "n": 1 }));

    // wait_for discards non-matching "news" (n = 2) until n = 3 shows up.
    let third = client
        .wait_for("news", WAIT, |v| v["n"] == json!(3))
        .await
        .expect("news 3");
    assert_eq!(third, json!({ "n": 3 }));
    assert_eq!(
        client.next_event("news", WAIT).await.expect("news 4"),
        json!({ "n": 4 }),
        "news 2 must have been discarded"
    );

    // Everything else is still buffered, in arrival order.
    client.next_event("last", WAIT).await.expect("last");
    assert_eq!(
        client.drain_events(),
        vec![
            ("other".to_owned(), json!({ "n": 1 })),
            ("other".to_owned(), json!({ "n": 2 })),
            ("other".to_owned(), json!({ "n": 3 })),
        ]
    );
    assert!(client.drain_events().is_empty());

    // A push that arrives while waiting wakes the waiter.
    let waiter = client.next_event("news", WAIT);
    client.emit("shout", json!("late")).expect("emit");
    assert_eq!(waiter.await.expect("late news"), json!("late"));
    assert_eq!(
        client.next_event("news", SHORT).await,
        Err(SioError::Timeout)
    );
}

#[tokio::test]
async fn send_raw_reaches_the_server() {
    let server = start_server(None).await;
    let client = SioClient::connect(&server.url, Some("good"))
        .await
        .expect("connect");
    client
        .send_raw(r#"42["shout",{"raw":true}]"#.to_owned())
        .expect("send");
    assert_eq!(
        client.next_event("news", WAIT).await.expect("news"),
        json!({ "raw": true })
    );
}

#[tokio::test]
async fn malformed_input_ends_in_a_clean_disconnect() {
    let server = start_server(None).await;
    let client = SioClient::connect(&server.url, Some("good"))
        .await
        .expect("connect");
    client.next_event("hello", WAIT).await.expect("hello");
    // socketioxide 0.18 drops a connection that sends an unparsable packet;
    // the client must notice promptly instead of hanging or panicking.
    client.send_raw("42not json".to_owned()).expect("send");
    assert_eq!(
        client.next_event("never", WAIT).await,
        Err(SioError::Disconnected)
    );
    assert!(!client.is_connected());
    assert_eq!(
        client.emit_with_ack("echo", json!(1), WAIT).await,
        Err(SioError::Disconnected)
    );
    assert_eq!(
        client.send_raw("42[\"echo\",1]".to_owned()),
        Err(SioError::Disconnected)
    );
}

#[tokio::test]
async fn missing_ack_times_out_and_client_keeps_working() {
    let server = start_server(None).await;
    let client = SioClient::connect(&server.url, Some("good"))
        .await
        .expect("connect");
    assert_eq!(
        client.emit_with_ack("noack", json!({}), SHORT).await,
        Err(SioError::Timeout)
    );
    assert_eq!(
        client.next_event("never", SHORT).await,
        Err(SioError::Timeout)
    );
    assert_eq!(
        client
            .emit_with_ack("echo", json!("after timeout"), WAIT)
            .await
            .expect("echo"),
        json!("after timeout")
    );
    assert!(client.is_connected());
}

#[tokio::test]
async fn server_disconnect_is_detected() {
    let server = start_server(None).await;
    let client = SioClient::connect(&server.url, Some("good"))
        .await
        .expect("connect");
    client.next_event("hello", WAIT).await.expect("hello");

    // The server never acks "kick": the pending ack must fail, not time out.
    assert_eq!(
        client.emit_with_ack("kick", Value::Null, WAIT).await,
        Err(SioError::Disconnected)
    );
    assert!(!client.is_connected());
    // A push buffered before the disconnect is still delivered, then the error.
    assert_eq!(
        client.next_event("bye", WAIT).await.expect("bye"),
        json!("see you")
    );
    assert_eq!(
        client.next_event("bye", WAIT).await,
        Err(SioError::Disconnected)
    );
    assert_eq!(
        client.emit("echo", Value::Null),
        Err(SioError::Disconnected)
    );
    assert_eq!(
        client.emit_with_ack("echo", Value::Null, WAIT).await,
        Err(SioError::Disconnected)
    );
    client
        .disconnect()
        .await
        .expect("disconnect after server disconnect");
}

#[tokio::test]
async fn client_disconnect_reaches_the_server() {
    let mut server = start_server(None).await;
    let client = SioClient::connect(&server.url, Some("good"))
        .await
        .expect("connect");
    let sid = client.sid().to_owned();
    client.disconnect().await.expect("disconnect");
    let gone = tokio::time::timeout(WAIT, server.disconnects.recv())
        .await
        .expect("server saw the disconnect in time")
        .expect("channel open");
    assert_eq!(gone, sid);
}

#[tokio::test]
async fn heartbeats_are_answered() {
    // The server drops clients that miss a pong within 250 ms of each 250 ms ping.
    let server = start_server(Some(Duration::from_millis(250))).await;
    let client = SioClient::connect(&server.url, Some("good"))
        .await
        .expect("connect");
    // Stay idle for several heartbeat periods (bounded wait on an event that never comes).
    assert_eq!(
        client
            .next_event("never", Duration::from_millis(1500))
            .await,
        Err(SioError::Timeout)
    );
    assert!(client.is_connected());
    assert_eq!(
        client
            .emit_with_ack("echo", json!("alive"), WAIT)
            .await
            .expect("echo"),
        json!("alive")
    );
}

/// A scripted server exercising wire details socketioxide never produces:
/// namespace prefix `/,`, batched packets, binary frames, out-of-order acks,
/// and a websocket closed without a Socket.IO DISCONNECT.
#[tokio::test]
async fn raw_wire_edge_cases() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (seen_tx, mut seen_rx) = mpsc::unbounded_channel::<String>();
    let (close_tx, close_rx) = tokio::sync::oneshot::channel::<()>();

    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.expect("accept");
        let mut ws = tokio_tungstenite::accept_async(tcp)
            .await
            .expect("ws accept");
        ws.send(Message::text(
            r#"0{"sid":"eio","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#,
        ))
        .await
        .expect("open");
        let connect = recv_text(&mut ws).await;
        seen_tx.send(connect).expect("seen");
        // CONNECT answer with an explicit "/" namespace, batched with a push.
        ws.send(Message::text("40/,{\"sid\":\"fake-sid\"}\u{1e}42[\"a\",1]"))
            .await
            .expect("connect ok");
        ws.send(Message::binary(vec![1u8, 2, 3]))
            .await
            .expect("binary");
        ws.send(Message::text("2")).await.expect("ping");
        assert_eq!(recv_text(&mut ws).await, "3");
        ws.send(Message::text("42/admin,[\"ignored\",0]"))
            .await
            .expect("other ns");
        ws.send(Message::text("42garbage")).await.expect("garbage");
        ws.send(Message::text("42/,[\"b\",{\"x\":2}]"))
            .await
            .expect("b");

        // Two acked emits: answer them in reverse order.
        let first = recv_text(&mut ws).await;
        let second = recv_text(&mut ws).await;
        seen_tx.send(first).expect("seen");
        seen_tx.send(second).expect("seen");
        ws.send(Message::text("431[\"second\"]"))
            .await
            .expect("ack 1");
        ws.send(Message::text("430[\"first\",\"extra\"]"))
            .await
            .expect("ack 0");

        close_rx.await.ok();
        // Drop the TCP connection without a Socket.IO disconnect.
        drop(ws);
    });

    let client = SioClient::connect(&format!("http://{addr}/"), Some("t"))
        .await
        .expect("connect");
    assert_eq!(client.sid(), "fake-sid");
    assert_eq!(seen_rx.recv().await.expect("connect"), r#"40{"token":"t"}"#);
    assert_eq!(
        client.next_event("b", WAIT).await.expect("b"),
        json!({"x": 2})
    );
    assert_eq!(client.drain_events(), vec![("a".to_owned(), json!(1))]);

    let (r0, r1) = tokio::join!(
        client.emit_with_ack("e", json!(0), WAIT),
        client.emit_with_ack("e", json!(1), WAIT),
    );
    assert_eq!(r0.expect("ack 0"), json!("first"));
    assert_eq!(r1.expect("ack 1"), json!("second"));
    let mut frames = vec![
        seen_rx.recv().await.expect("frame"),
        seen_rx.recv().await.expect("frame"),
    ];
    frames.sort();
    assert_eq!(frames, vec![r#"420["e",0]"#, r#"421["e",1]"#]);

    close_tx.send(()).expect("close");
    assert_eq!(
        client.next_event("never", WAIT).await,
        Err(SioError::Disconnected)
    );
    assert!(!client.is_connected());
}

async fn recv_text<S>(ws: &mut tokio_tungstenite::WebSocketStream<S>) -> String
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => return t.as_str().to_owned(),
            Some(Ok(_)) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
}
