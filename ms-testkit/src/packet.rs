//! Engine.IO v4 / Socket.IO v5 text packet parsing and encoding.
//!
//! Everything here is pure (no I/O) so it can be unit-tested exhaustively and
//! never panics on untrusted input.
//!
//! Two levels: [`parse_eio`] / [`parse_sio`] decode a frame fully (the test client, the
//! load generator's handshake); [`classify`] and [`encode_event_json`] do no JSON work at
//! all, for the load generator's hot path over thousands of sockets.

use serde_json::Value;

use crate::SioError;

/// Engine.IO record separator; only used by HTTP long-polling batches, but
/// splitting on it keeps us robust should a server ever batch over websocket.
/// Valid JSON never contains a raw 0x1e byte, so the split cannot cut a payload.
const RECORD_SEPARATOR: char = '\u{1e}';

/// One Engine.IO packet, borrowing its payload from the websocket frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EioPacket<'a> {
    /// `0{...}`: handshake data (sid, pingInterval, pingTimeout, ...).
    Open(&'a str),
    /// `1`: the server closes the Engine.IO session.
    Close,
    /// `2[payload]`: heartbeat, must be answered with `3[payload]`.
    Ping(&'a str),
    /// `3[payload]`: heartbeat answer (servers do not send it in EIO4).
    Pong,
    /// `4...`: a Socket.IO packet.
    Message(&'a str),
    /// `5`: transport upgrade (polling only).
    Upgrade,
    /// `6`: no-op (polling only).
    Noop,
}

/// Splits a websocket text frame into Engine.IO packets (normally exactly one).
pub(crate) fn split_frame(frame: &str) -> impl Iterator<Item = &str> {
    frame.split(RECORD_SEPARATOR).filter(|p| !p.is_empty())
}

/// Parses one Engine.IO packet.
pub fn parse_eio(raw: &str) -> Result<EioPacket<'_>, SioError> {
    let mut chars = raw.chars();
    let kind = chars
        .next()
        .ok_or_else(|| SioError::Protocol("empty engine.io packet".into()))?;
    let rest = chars.as_str();
    Ok(match kind {
        '0' => EioPacket::Open(rest),
        '1' => EioPacket::Close,
        '2' => EioPacket::Ping(rest),
        '3' => EioPacket::Pong,
        '4' => EioPacket::Message(rest),
        '5' => EioPacket::Upgrade,
        '6' => EioPacket::Noop,
        other => {
            return Err(SioError::Protocol(format!(
                "unknown engine.io packet type {other:?}"
            )));
        }
    })
}

/// Socket.IO v5 packet types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SioKind {
    /// `0`: namespace connect (client) / connect ok (server).
    Connect,
    /// `1`: namespace disconnect.
    Disconnect,
    /// `2`: event.
    Event,
    /// `3`: ack answer.
    Ack,
    /// `4`: namespace connect refused.
    ConnectError,
    /// `5`: event with binary attachments.
    BinaryEvent,
    /// `6`: ack with binary attachments.
    BinaryAck,
}

/// A decoded Socket.IO packet.
#[derive(Debug, Clone, PartialEq)]
pub struct SioPacket {
    /// Packet type.
    pub kind: SioKind,
    /// Namespace, `/` when omitted.
    pub namespace: String,
    /// Ack id when present.
    pub ack_id: Option<u64>,
    /// JSON payload when present.
    pub data: Option<Value>,
}

/// Parses a Socket.IO packet (the part after the Engine.IO `4`).
///
/// Format: `<type>[<attachments>-][<namespace>,][<ack id>][<json>]`.
pub fn parse_sio(raw: &str) -> Result<SioPacket, SioError> {
    let bytes = raw.as_bytes();
    let kind = match bytes.first() {
        Some(b'0') => SioKind::Connect,
        Some(b'1') => SioKind::Disconnect,
        Some(b'2') => SioKind::Event,
        Some(b'3') => SioKind::Ack,
        Some(b'4') => SioKind::ConnectError,
        Some(b'5') => SioKind::BinaryEvent,
        Some(b'6') => SioKind::BinaryAck,
        Some(_) => {
            return Err(SioError::Protocol(format!(
                "unknown socket.io packet type in {raw:?}"
            )));
        }
        None => return Err(SioError::Protocol("empty socket.io packet".into())),
    };
    // The first byte is an ASCII digit, so slicing at 1 is on a char boundary.
    let mut rest = &raw[1..];

    if matches!(kind, SioKind::BinaryEvent | SioKind::BinaryAck) {
        let digits = leading_digits(rest);
        if digits == 0 || rest.as_bytes().get(digits) != Some(&b'-') {
            return Err(SioError::Protocol(format!(
                "binary packet without attachment count: {raw:?}"
            )));
        }
        rest = &rest[digits + 1..];
    }

    let namespace = if rest.starts_with('/') {
        match rest.find(',') {
            Some(comma) => {
                let ns = &rest[..comma];
                rest = &rest[comma + 1..];
                ns.to_owned()
            }
            None => {
                let ns = rest;
                rest = "";
                ns.to_owned()
            }
        }
    } else {
        "/".to_owned()
    };

    let digits = leading_digits(rest);
    let ack_id = if digits > 0 {
        let id = rest[..digits]
            .parse::<u64>()
            .map_err(|e| SioError::Protocol(format!("bad ack id in {raw:?}: {e}")))?;
        rest = &rest[digits..];
        Some(id)
    } else {
        None
    };

    let data = if rest.trim().is_empty() {
        None
    } else {
        Some(
            serde_json::from_str(rest)
                .map_err(|e| SioError::Protocol(format!("bad json in {raw:?}: {e}")))?,
        )
    };

    Ok(SioPacket {
        kind,
        namespace,
        ack_id,
        data,
    })
}

/// Number of leading ASCII digits (all single-byte, so usable as a byte index).
fn leading_digits(s: &str) -> usize {
    s.bytes().take_while(u8::is_ascii_digit).count()
}

/// Splits an event payload `["name", arg0, ...]` into its name and first argument
/// (`Null` when the event carries no argument).
pub(crate) fn event_parts(data: Option<Value>) -> Result<(String, Value), SioError> {
    let Some(Value::Array(items)) = data else {
        return Err(SioError::Protocol(
            "event payload is not a JSON array".into(),
        ));
    };
    let mut items = items.into_iter();
    let name = match items.next() {
        Some(Value::String(name)) => name,
        other => {
            return Err(SioError::Protocol(format!(
                "event name is not a string: {other:?}"
            )));
        }
    };
    Ok((name, items.next().unwrap_or(Value::Null)))
}

/// First argument of an ack payload `[arg0, ...]` (`Null` when empty or absent).
pub fn ack_first_arg(data: Option<Value>) -> Result<Value, SioError> {
    match data {
        None => Ok(Value::Null),
        Some(Value::Array(items)) => Ok(items.into_iter().next().unwrap_or(Value::Null)),
        Some(other) => Err(SioError::Protocol(format!(
            "ack payload is not a JSON array: {other}"
        ))),
    }
}

/// The `message` of a connect_error payload, falling back to the raw JSON.
pub fn connect_error_message(data: Option<Value>) -> String {
    match data {
        Some(Value::Object(mut map)) => match map.remove("message") {
            Some(Value::String(msg)) => msg,
            Some(other) => other.to_string(),
            None => Value::Object(map).to_string(),
        },
        Some(Value::String(msg)) => msg,
        Some(other) => other.to_string(),
        None => String::new(),
    }
}

/// Encodes a client event as a full Engine.IO text frame: `42[<id>]["event",payload]`.
pub(crate) fn encode_event(
    event: &str,
    payload: Value,
    ack_id: Option<u64>,
) -> Result<String, SioError> {
    let body = serde_json::to_string(&Value::Array(vec![
        Value::String(event.to_owned()),
        payload,
    ]))
    .map_err(|e| SioError::Protocol(format!("cannot encode event {event:?}: {e}")))?;
    Ok(match ack_id {
        Some(id) => format!("42{id}{body}"),
        None => format!("42{body}"),
    })
}

/// Encodes the namespace CONNECT frame for `/`: `40` or `40{auth}`.
pub fn encode_connect(auth: &Value) -> Result<String, SioError> {
    if auth.is_null() {
        return Ok("40".to_owned());
    }
    let body = serde_json::to_string(auth)
        .map_err(|e| SioError::Protocol(format!("cannot encode auth payload: {e}")))?;
    Ok(format!("40{body}"))
}

/// Encodes an event with an ack request from JSON text encoded beforehand:
/// `42<id>["event",payload]`. Unlike `encode_event` it does no JSON work, so a load
/// generator can send the same payload many times cheaply; `event` is written as is and
/// must need no JSON escaping.
pub fn encode_event_json(ack_id: u64, event: &str, payload_json: &str) -> String {
    format!("42{ack_id}[\"{event}\",{payload_json}]")
}

/// One Engine.IO/Socket.IO text frame as [`classify`] sees it, borrowing from the frame.
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
        /// The ack's JSON text (the part after the id).
        body: &'a str,
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

/// Classifies one text frame without parsing its JSON or allocating: the load
/// generator's per-frame path, where a full [`parse_sio`] would cost more than the
/// router's work being measured.
pub fn classify(text: &str) -> Frame<'_> {
    if text == "2" {
        return Frame::Ping;
    }
    if text == "1" || text == "41" {
        return Frame::Closed;
    }
    if let Some(rest) = text.strip_prefix("43") {
        let digits = leading_digits(rest);
        let Ok(id) = rest[..digits].parse::<u64>() else {
            return Frame::Other;
        };
        let body = &rest[digits..];
        let status = if body.starts_with("[{\"data\"") {
            200
        } else {
            status_of(body)
        };
        return Frame::Ack { id, status, body };
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use serde_json::json;

    #[test]
    fn eio_packets() {
        assert_eq!(
            parse_eio("0{\"sid\":\"a\"}").unwrap(),
            EioPacket::Open("{\"sid\":\"a\"}")
        );
        assert_eq!(parse_eio("2").unwrap(), EioPacket::Ping(""));
        assert_eq!(parse_eio("2probe").unwrap(), EioPacket::Ping("probe"));
        assert_eq!(
            parse_eio("42[\"a\"]").unwrap(),
            EioPacket::Message("2[\"a\"]")
        );
        assert_eq!(parse_eio("1").unwrap(), EioPacket::Close);
        assert_eq!(parse_eio("6").unwrap(), EioPacket::Noop);
        assert!(parse_eio("").is_err());
        assert!(parse_eio("9").is_err());
        assert!(parse_eio("é").is_err());
    }

    #[test]
    fn split_frames() {
        let parts: Vec<_> = split_frame("2\u{1e}42[\"a\",1]\u{1e}").collect();
        assert_eq!(parts, vec!["2", "42[\"a\",1]"]);
        assert_eq!(split_frame("3").count(), 1);
    }

    #[test]
    fn connect_packets() {
        let p = parse_sio("0{\"sid\":\"xyz\"}").unwrap();
        assert_eq!(p.kind, SioKind::Connect);
        assert_eq!(p.namespace, "/");
        assert_eq!(p.ack_id, None);
        assert_eq!(p.data, Some(json!({"sid": "xyz"})));

        let p = parse_sio("0/,{\"sid\":\"xyz\"}").unwrap();
        assert_eq!(p.namespace, "/");
        assert_eq!(p.data, Some(json!({"sid": "xyz"})));

        let p = parse_sio("0/admin,").unwrap();
        assert_eq!(p.namespace, "/admin");
        assert_eq!(p.data, None);

        let p = parse_sio("1/admin").unwrap();
        assert_eq!(p.kind, SioKind::Disconnect);
        assert_eq!(p.namespace, "/admin");

        let p = parse_sio("4{\"message\":\"Not authorized\"}").unwrap();
        assert_eq!(p.kind, SioKind::ConnectError);
        assert_eq!(connect_error_message(p.data), "Not authorized");
    }

    #[test]
    fn event_and_ack_packets() {
        let p = parse_sio("2[\"news\",{\"a\":1}]").unwrap();
        assert_eq!(p.kind, SioKind::Event);
        assert_eq!(p.ack_id, None);
        assert_eq!(
            event_parts(p.data).unwrap(),
            ("news".to_owned(), json!({"a": 1}))
        );

        let p = parse_sio("2/,12[\"x\"]").unwrap();
        assert_eq!(p.ack_id, Some(12));
        assert_eq!(event_parts(p.data).unwrap(), ("x".to_owned(), Value::Null));

        let p = parse_sio("3987[{\"ok\":true},2]").unwrap();
        assert_eq!(p.kind, SioKind::Ack);
        assert_eq!(p.ack_id, Some(987));
        assert_eq!(ack_first_arg(p.data).unwrap(), json!({"ok": true}));

        let p = parse_sio("35[]").unwrap();
        assert_eq!(ack_first_arg(p.data).unwrap(), Value::Null);

        let p = parse_sio("51-[\"up\",{\"_placeholder\":true,\"num\":0}]").unwrap();
        assert_eq!(p.kind, SioKind::BinaryEvent);
        assert_eq!(p.ack_id, None);
    }

    #[test]
    fn malformed_packets_are_errors_not_panics() {
        for raw in [
            "",
            "7",
            "x",
            "2[",
            "2{notjson",
            "299999999999999999999999[\"a\"]",
            "5[\"no-attachments\"]",
            "5x-[]",
            "2/é,[\"a\"]x",
        ] {
            assert!(parse_sio(raw).is_err(), "{raw:?} should fail");
        }
        assert!(event_parts(Some(json!({"a": 1}))).is_err());
        assert!(event_parts(Some(json!([1, 2]))).is_err());
        assert!(event_parts(Some(json!([]))).is_err());
        assert!(event_parts(None).is_err());
        assert!(ack_first_arg(Some(json!({"a": 1}))).is_err());
    }

    #[test]
    fn encoding() {
        assert_eq!(
            encode_event("echo", json!({"a": 1}), Some(7)).unwrap(),
            "427[\"echo\",{\"a\":1}]"
        );
        assert_eq!(
            encode_event("ping", Value::Null, None).unwrap(),
            "42[\"ping\",null]"
        );
        assert_eq!(encode_connect(&Value::Null).unwrap(), "40");
        assert_eq!(
            encode_connect(&json!({"token": "t"})).unwrap(),
            "40{\"token\":\"t\"}"
        );
    }

    #[test]
    fn frames_classified_without_parsing() {
        assert_eq!(classify("2"), Frame::Ping);
        assert_eq!(
            classify(r#"437[{"data":{"id":"a","status":"available"}}]"#),
            Frame::Ack {
                id: 7,
                status: 200,
                body: r#"[{"data":{"id":"a","status":"available"}}]"#
            }
        );
        assert_eq!(
            classify(r#"4312[{"errors":[{"message":"x"}],"status":409}]"#),
            Frame::Ack {
                id: 12,
                status: 409,
                body: r#"[{"errors":[{"message":"x"}],"status":409}]"#
            }
        );
        assert_eq!(
            classify(r#"4312[{"errors":[]}]"#),
            Frame::Ack {
                id: 12,
                status: 0,
                body: r#"[{"errors":[]}]"#
            }
        );
        assert_eq!(
            classify(r#"42["stuff:updated",{"id":"s","version":3}]"#),
            Frame::Event {
                name: "stuff:updated",
                payload: r#"{"id":"s","version":3}"#
            }
        );
        assert_eq!(
            classify(r#"42["tick"]"#),
            Frame::Event {
                name: "tick",
                payload: "null"
            }
        );
        assert_eq!(classify("41"), Frame::Closed);
        assert_eq!(classify("1"), Frame::Closed);
        assert_eq!(classify("3"), Frame::Other);
        assert_eq!(classify("43"), Frame::Other);
        assert_eq!(classify("43x"), Frame::Other);
        assert_eq!(classify("43999999999999999999999[]"), Frame::Other);
        assert_eq!(classify(""), Frame::Other);
        assert_eq!(classify("42[\"é"), Frame::Other);
    }

    #[test]
    fn fast_encoding_matches_the_full_encoder() {
        assert_eq!(
            encode_event_json(5, "stuff:get", r#"{"id":"x"}"#),
            r#"425["stuff:get",{"id":"x"}]"#
        );
        assert_eq!(
            encode_event_json(5, "stuff:get", r#"{"id":"x"}"#),
            encode_event("stuff:get", json!({"id": "x"}), Some(5)).unwrap()
        );
    }
}
