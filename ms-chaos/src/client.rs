//! Client-side helpers: HTTP sign-up, Socket.IO requests and the contract's ack envelope.

use ms_testkit::{SioClient, SioError};
use serde_json::{Value, json};
use std::time::Duration;

/// The statuses the contract allows in an error ack or body.
pub const CONTRACT_STATUSES: [u64; 9] = [400, 401, 402, 403, 404, 409, 429, 500, 503];

/// Why `v` is not a contract envelope (`{data}` or `{status, errors:[{message, field?}]}`),
/// or `None` when it is one.
pub fn envelope_problem(v: &Value) -> Option<String> {
    let Some(obj) = v.as_object() else {
        return Some(format!("not an object: {v}"));
    };
    if obj.contains_key("data") {
        if obj.len() != 1 {
            return Some(format!("data envelope with extra keys: {v}"));
        }
        return None;
    }
    error_body_problem(v, true)
}

/// Why `v` is not an error body (`{errors:[…]}`, plus `status` when `with_status`).
pub fn error_body_problem(v: &Value, with_status: bool) -> Option<String> {
    let Some(obj) = v.as_object() else {
        return Some(format!("not an object: {v}"));
    };
    let want = if with_status { 2 } else { 1 };
    if obj.len() != want {
        return Some(format!("unexpected keys: {v}"));
    }
    let status = if with_status {
        match obj.get("status").and_then(Value::as_u64) {
            Some(s) if CONTRACT_STATUSES.contains(&s) => Some(s),
            _ => return Some(format!("bad status: {v}")),
        }
    } else {
        None
    };
    let Some(errors) = obj.get("errors").and_then(Value::as_array) else {
        return Some(format!("no errors array: {v}"));
    };
    if errors.is_empty() {
        return Some(format!("empty errors: {v}"));
    }
    for e in errors {
        let Some(eo) = e.as_object() else {
            return Some(format!("error is not an object: {v}"));
        };
        match eo.get("message").and_then(Value::as_str) {
            Some(m) if !m.trim().is_empty() => {
                if status == Some(500) && m != ms_common::error::INTERNAL_MESSAGE {
                    return Some(format!("a 500 shows more than the generic message: {v}"));
                }
            }
            _ => return Some(format!("error without message: {v}")),
        }
        if let Some(f) = eo.get("field")
            && !f.is_string()
        {
            return Some(format!("field is not a string: {v}"));
        }
        if eo.keys().any(|k| k != "message" && k != "field") {
            return Some(format!("error with extra keys: {v}"));
        }
    }
    None
}

/// An answered request, classified.
#[derive(Debug, Clone, PartialEq)]
pub enum Ack {
    /// `{data}`.
    Data(Value),
    /// `{status, errors}`: the status and the first message.
    Error(u64, String),
}

impl Ack {
    /// Classifies an ack that passed [`envelope_problem`].
    pub fn of(v: &Value) -> Self {
        match v.get("data") {
            Some(d) => Ack::Data(d.clone()),
            None => Ack::Error(
                v["status"].as_u64().unwrap_or(0),
                v["errors"][0]["message"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            ),
        }
    }

    /// The data, if it is a success.
    pub fn data(&self) -> Option<&Value> {
        match self {
            Ack::Data(d) => Some(d),
            Ack::Error(..) => None,
        }
    }

    /// The status (200 for data).
    pub fn status(&self) -> u64 {
        match self {
            Ack::Data(_) => 200,
            Ack::Error(s, _) => *s,
        }
    }
}

/// Emits `event` and checks the envelope; an envelope violation is an error.
pub async fn ask(
    c: &SioClient,
    event: &str,
    payload: Value,
    timeout: Duration,
) -> anyhow::Result<Ack> {
    let v = c
        .emit_with_ack(event, payload.clone(), timeout)
        .await
        .map_err(|e: SioError| anyhow::anyhow!("{event} {payload}: no ack: {e}"))?;
    if let Some(p) = envelope_problem(&v) {
        anyhow::bail!("{event} {payload}: {p}");
    }
    Ok(Ack::of(&v))
}

/// Signs up `email` (password `password123`); returns `(accessToken, userId)`.
pub async fn signup(base: &str, email: &str) -> anyhow::Result<(String, String)> {
    let r = reqwest::Client::new()
        .post(format!("{base}/api/users/signup"))
        .json(&json!({"email": email, "password": "password123"}))
        .timeout(Duration::from_secs(10))
        .send()
        .await?;
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap_or(Value::Null);
    anyhow::ensure!(status == 201, "signup of {email} gave {status}: {body}");
    Ok((
        body["accessToken"].as_str().unwrap_or_default().to_owned(),
        body["user"]["id"].as_str().unwrap_or_default().to_owned(),
    ))
}
