//! A steady stream of real shopping through the router (list → buy → pay / decline /
//! cancel / let the hold expire), recording every accepted request so the stores can be
//! checked against what clients were told.

use ms_chaos::client::{ask, signup};
use ms_chaos::stores::World;
use ms_chaos::{Ack, ProcSystem, Stores};
use ms_testkit::SioClient;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// Longer than the router's longest wait: `payment:create` to a killed ms-payment is answered
/// 503 only after the gateway wait, and a client must not give up before the router does.
const ACK: Duration =
    ms_common::contract::GATEWAY_REPLY_WAIT.saturating_add(Duration::from_secs(5));

/// What clients were told, by outcome.
#[derive(Default, Debug)]
pub struct Ledger {
    /// `stuff:create` answered with data.
    pub stuff: Vec<String>,
    /// `order:create` answered with data.
    pub orders: Vec<String>,
    /// `payment:create` answered with data: (order, payment).
    pub paid: Vec<(String, String)>,
    /// `payment:create` answered 402.
    pub declined: Vec<String>,
    /// `order:cancel` answered with a cancelled order.
    pub cancelled: Vec<String>,
    /// Requests without an ack or with a malformed one, and unexpected statuses.
    pub problems: Vec<String>,
    /// How often each status was seen, per event.
    pub statuses: BTreeMap<String, u64>,
}

/// The running stream.
pub struct Load {
    stop: Arc<AtomicBool>,
    answered: Arc<AtomicU64>,
    succeeded: Arc<AtomicU64>,
    ledger: Arc<Mutex<Ledger>>,
    tasks: Vec<JoinHandle<()>>,
}

struct Actor {
    seller: Arc<SioClient>,
    buyer: Arc<SioClient>,
    rival: Arc<SioClient>,
    answered: Arc<AtomicU64>,
    succeeded: Arc<AtomicU64>,
    ledger: Arc<Mutex<Ledger>>,
}

/// Statuses a well-formed request may get while services crash and restart: 402 declined,
/// 404 a replica still catching up, 409 held / sold / cancelled, 503 a service is down.
const EXPECTED: [u64; 5] = [200, 402, 404, 409, 503];

impl Actor {
    fn lock(&self) -> std::sync::MutexGuard<'_, Ledger> {
        self.ledger
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn request(&self, c: &SioClient, event: &str, payload: Value) -> Option<Ack> {
        match ask(c, event, payload, ACK).await {
            Ok(a) => {
                self.answered.fetch_add(1, Ordering::SeqCst);
                if a.data().is_some() {
                    self.succeeded.fetch_add(1, Ordering::SeqCst);
                }
                let mut l = self.lock();
                *l.statuses
                    .entry(format!("{event} {}", a.status()))
                    .or_default() += 1;
                if !EXPECTED.contains(&a.status()) {
                    l.problems.push(format!("{event}: unexpected {a:?}"));
                }
                Some(a)
            }
            Err(e) => {
                self.lock().problems.push(format!("{e:#}"));
                None
            }
        }
    }

    async fn round(&self, k: u64) {
        let Some(Ack::Data(stuff)) = self
            .request(
                &self.seller,
                "stuff:create",
                json!({"secretNote": "the goods", "title": format!("chaos item {k}"), "priceCents": 100 + k}),
            )
            .await
        else {
            return;
        };
        let stuff_id = stuff["id"].as_str().unwrap_or_default().to_owned();
        self.lock().stuff.push(stuff_id.clone());
        // Every third item has two buyers racing for it.
        let order = if k.is_multiple_of(3) {
            let (a, b) = tokio::join!(
                self.request(&self.buyer, "order:create", json!({"stuffId": stuff_id})),
                self.request(&self.rival, "order:create", json!({"stuffId": stuff_id})),
            );
            if let (Some(Ack::Data(_)), Some(Ack::Data(_))) = (&a, &b) {
                self.lock()
                    .problems
                    .push(format!("two buyers both won stuff {stuff_id}"));
            }
            match (a, b) {
                (Some(Ack::Data(o)), _) => Some((o, &self.buyer)),
                (_, Some(Ack::Data(o))) => Some((o, &self.rival)),
                _ => None,
            }
        } else {
            match self
                .request(&self.buyer, "order:create", json!({"stuffId": stuff_id}))
                .await
            {
                Some(Ack::Data(o)) => Some((o, &self.buyer)),
                _ => None,
            }
        };
        let Some((order, owner)) = order else {
            return;
        };
        let order_id = order["id"].as_str().unwrap_or_default().to_owned();
        self.lock().orders.push(order_id.clone());
        match k % 4 {
            0 | 1 => {
                let pm = if k.is_multiple_of(4) {
                    "pm_card_visa"
                } else {
                    "pm_card_chargeDeclined"
                };
                match self
                    .request(
                        owner,
                        "payment:create",
                        json!({"orderId": order_id, "paymentMethod": pm}),
                    )
                    .await
                {
                    Some(Ack::Data(p)) => {
                        let pid = p["id"].as_str().unwrap_or_default().to_owned();
                        self.lock().paid.push((order_id, pid));
                    }
                    Some(Ack::Error(402, _)) => self.lock().declined.push(order_id),
                    _ => {}
                }
            }
            2 => {
                if let Some(Ack::Data(o)) = self
                    .request(owner, "order:cancel", json!({"id": order_id}))
                    .await
                    && o["status"] == "cancelled"
                {
                    self.lock().cancelled.push(order_id);
                }
            }
            // Left alone: the hold expires.
            _ => {}
        }
    }
}

impl Load {
    /// Signs up a seller and `2 * pairs` buyers and starts `pairs` shopping tasks.
    pub async fn start(url: &str, pairs: usize) -> anyhow::Result<Self> {
        let tag = uuid::Uuid::new_v4().simple().to_string();
        let (st, _) = signup(url, &format!("seller-{}@example.com", &tag[..8])).await?;
        let seller = Arc::new(SioClient::connect(url, Some(&st)).await?);
        let stop = Arc::new(AtomicBool::new(false));
        let answered = Arc::new(AtomicU64::new(0));
        let succeeded = Arc::new(AtomicU64::new(0));
        let ledger = Arc::new(Mutex::new(Ledger::default()));
        let mut tasks = Vec::new();
        for i in 0..pairs {
            let (bt, _) = signup(url, &format!("buyer{i}-{}@example.com", &tag[..8])).await?;
            let (rt, _) = signup(url, &format!("rival{i}-{}@example.com", &tag[..8])).await?;
            let actor = Actor {
                seller: seller.clone(),
                buyer: Arc::new(SioClient::connect(url, Some(&bt)).await?),
                rival: Arc::new(SioClient::connect(url, Some(&rt)).await?),
                answered: answered.clone(),
                succeeded: succeeded.clone(),
                ledger: ledger.clone(),
            };
            let stop = stop.clone();
            tasks.push(tokio::spawn(async move {
                let mut k = i as u64;
                while !stop.load(Ordering::SeqCst) {
                    actor.round(k).await;
                    k += pairs as u64;
                }
            }));
        }
        Ok(Self {
            stop,
            answered,
            succeeded,
            ledger,
            tasks,
        })
    }

    /// Waits until `n` more requests were answered with data.
    pub async fn successes(&self, n: u64, timeout: Duration, what: &str) -> anyhow::Result<()> {
        wait_counter(&self.succeeded, n, timeout, what).await
    }

    /// Waits until `n` more requests were answered at all.
    pub async fn answers(&self, n: u64, timeout: Duration, what: &str) -> anyhow::Result<()> {
        wait_counter(&self.answered, n, timeout, what).await
    }

    /// Stops after the current rounds and returns what clients were told.
    pub async fn stop(self) -> Ledger {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.tasks {
            // A round ends within a few acks' time; abort as a backstop.
            let abort = t.abort_handle();
            if tokio::time::timeout(ACK * 4, t).await.is_err() {
                abort.abort();
            }
        }
        let mut l = self
            .ledger
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        std::mem::take(&mut *l)
    }
}

async fn wait_counter(c: &AtomicU64, n: u64, timeout: Duration, what: &str) -> anyhow::Result<()> {
    let target = c.load(Ordering::SeqCst) + n;
    let deadline = Instant::now() + timeout;
    while c.load(Ordering::SeqCst) < target {
        anyhow::ensure!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {n} more {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

impl Ledger {
    /// Every way the stores contradict what clients were told.
    pub fn contradictions(&self, w: &World) -> Vec<String> {
        let mut p = self.problems.clone();
        // Each `stuff:create` of the stream has a title of its own: two rows with one title
        // mean one request was carried out twice (e.g. a redelivered RPC request).
        let mut titles: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for s in w.stuff.values() {
            titles
                .entry(s.title.as_str())
                .or_default()
                .push(s.id.as_str());
        }
        for (title, ids) in titles {
            if title.starts_with("chaos item") && ids.len() > 1 {
                p.push(format!(
                    "one stuff:create ({title:?}) was carried out {} times: {ids:?}",
                    ids.len()
                ));
            }
        }
        for id in &self.stuff {
            if !w.stuff.contains_key(id) {
                p.push(format!(
                    "stuff {id} was created for a client but is not stored"
                ));
            }
        }
        for id in &self.orders {
            if !w.orders.contains_key(id) {
                p.push(format!(
                    "order {id} was created for a client but is not stored"
                ));
            }
        }
        for (o, pay) in &self.paid {
            match w.orders.get(o) {
                Some(order) if order.status == "complete" => {}
                other => p.push(format!(
                    "order {o} was paid ({pay}) but is {:?}",
                    other.map(|x| &x.status)
                )),
            }
            if w.payments.get(o) != Some(pay) {
                p.push(format!(
                    "payment {pay} for order {o} is not the one stored: {:?}",
                    w.payments.get(o)
                ));
            }
        }
        for o in self.declined.iter().chain(self.cancelled.iter()) {
            match w.orders.get(o) {
                Some(order) if order.status == "cancelled" => {}
                other => p.push(format!(
                    "order {o} was declined/cancelled but is {:?}",
                    other.map(|x| &x.status)
                )),
            }
        }
        p
    }
}

/// Waits until the stores agree with each other (and no order is still holding its stuff
/// when `all_final`), every work and dead-letter queue is empty, and returns that state;
/// on timeout, fails with the last list of problems.
pub async fn settle(
    sys: &ProcSystem,
    stores: &Stores,
    all_final: bool,
    timeout: Duration,
) -> anyhow::Result<World> {
    let broker = sys.env.broker().await?;
    let queues = sys.work_queues();
    let deadline = Instant::now() + timeout;
    loop {
        let w = stores.world().await?;
        let mut problems = w.problems();
        if all_final {
            let holding = w.orders.values().filter(|o| o.status == "created").count();
            if holding > 0 {
                problems.push(format!("{holding} orders still hold their stuff"));
            }
        }
        for q in ms_chaos::amqp::non_empty(&broker, &queues).await? {
            problems.push(format!("queue not empty: {q}"));
        }
        if problems.is_empty() {
            broker.close().await;
            return Ok(w);
        }
        if Instant::now() >= deadline {
            broker.close().await;
            let shown: Vec<String> = problems.into_iter().take(40).collect();
            anyhow::bail!(
                "the stores did not converge within {timeout:?}:\n  {}",
                shown.join("\n  ")
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until every order ended and the stores agree ([`settle`]), then asserts that
/// nothing contradicts what clients were told; returns that state.
pub async fn assert_settled(sys: &ProcSystem, ledger: &Ledger, timeout: Duration) -> World {
    let stores = sys.stores().await.expect("open the stores");
    let world = settle(sys, &stores, true, timeout)
        .await
        .expect("the stores settle");
    let contradictions = ledger.contradictions(&world);
    assert!(
        contradictions.is_empty(),
        "clients were told otherwise:\n{}",
        contradictions.join("\n")
    );
    world
}

/// Every process still runs and none panicked.
pub fn assert_nothing_died(sys: &mut ProcSystem) {
    assert_eq!(sys.not_running(), Vec::<String>::new());
    assert_eq!(sys.panics(), Vec::<String>::new());
}

/// Every service answers an RPC through the router (HTTP sign-in for ms-user).
pub async fn every_service_answers(url: &str, c: &SioClient, email: &str) -> anyhow::Result<()> {
    let r = reqwest::Client::new()
        .post(format!("{url}/api/users/signin"))
        .json(&json!({"email": email, "password": "password123"}))
        .timeout(ACK)
        .send()
        .await?;
    anyhow::ensure!(r.status().as_u16() == 200, "ms-user: signin {}", r.status());
    for (event, want) in [
        ("stuff:list", 200),
        ("order:list", 200),
        ("coupon:list", 403),
    ] {
        let a = ask(c, event, json!({}), ACK).await?;
        anyhow::ensure!(a.status() == want, "{event}: {a:?}");
    }
    Ok(())
}
