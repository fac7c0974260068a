//! Reviews from verified buyers, through the router: only the buyer of a complete order
//! reviews it, once; the review is listed with the buyer's name, the order shows it was
//! reviewed, and ms-stuff's rating of the stuff follows through `review.created`.

use crate::{T, ask, err};
use ms_e2e::{System, SystemOptions};
use ms_testkit::eventually;
use serde_json::{Value, json};

/// Lists a deliverable stuff as `seller` and returns its id.
async fn listed(seller: &ms_testkit::SioClient, title: &str) -> String {
    let ack = ask(
        seller,
        "stuff:create",
        json!({"title": title, "priceCents": 700, "secretNote": "the goods"}),
    )
    .await;
    ack["data"]["id"].as_str().expect("a stuff id").to_owned()
}

#[tokio::test]
async fn the_buyer_of_a_paid_order_reviews_it_once_and_the_stuff_shows_the_rating() {
    let sys = System::start(SystemOptions::default()).await.unwrap();
    let (st, _) = sys.signup("sel.ler@example.com").await.unwrap();
    let (bt, _) = sys.signup("rita.b@example.com").await.unwrap();
    let (ot, _) = sys.signup("other@example.com").await.unwrap();
    let seller = sys.socket(0, Some(&st)).await.unwrap();
    let buyer = sys.socket(0, Some(&bt)).await.unwrap();
    let other = sys.socket(0, Some(&ot)).await.unwrap();
    let anon = sys.socket(0, None).await.unwrap();

    // Bought and paid.
    let stuff_id = listed(&seller, "Linear algebra notes").await;
    let order = ask(&buyer, "order:create", json!({"stuffId": stuff_id})).await;
    let order_id = order["data"]["id"].as_str().expect("an order").to_owned();
    assert_eq!(order["data"]["reviewed"], false, "{order}");
    let paid = ask(
        &buyer,
        "payment:create",
        json!({"orderId": order_id, "paymentMethod": "pm_card_visa"}),
    )
    .await;
    assert_eq!(paid["data"]["orderId"], order_id.as_str(), "{paid}");
    eventually(T, "the order complete", || async {
        let ack = ask(&buyer, "order:get", json!({"id": order_id})).await;
        (ack["data"]["status"] == "complete").then_some(())
    })
    .await
    .unwrap();

    // Bad input: 400 naming the field.
    for bad in [json!(0), json!(6), json!(4.5), json!("4"), Value::Null] {
        let ack = ask(
            &buyer,
            "review:create",
            json!({"orderId": order_id, "rating": bad}),
        )
        .await;
        assert_eq!(
            (err(&ack), ack["errors"][0]["field"].as_str()),
            (
                (400, "Rating must be a whole number from 1 to 5"),
                Some("rating")
            ),
            "{bad}: {ack}"
        );
    }
    let ack = ask(
        &buyer,
        "review:create",
        json!({"orderId": order_id, "rating": 4, "comment": "x".repeat(1001)}),
    )
    .await;
    assert_eq!(
        (err(&ack), ack["errors"][0]["field"].as_str()),
        (
            (400, "Comment must be at most 1000 characters"),
            Some("comment")
        ),
        "{ack}"
    );
    let ack = ask(&buyer, "review:create", json!({"rating": 4})).await;
    assert_eq!(
        (err(&ack).0, ack["errors"][0]["field"].as_str()),
        (400, Some("orderId"))
    );
    // Nobody signed in, and someone else's order: refused, nothing written.
    let ack = ask(
        &anon,
        "review:create",
        json!({"orderId": order_id, "rating": 4}),
    )
    .await;
    assert_eq!(err(&ack).0, 401, "{ack}");
    let ack = ask(
        &other,
        "review:create",
        json!({"orderId": order_id, "rating": 1}),
    )
    .await;
    assert_eq!(err(&ack), (404, "Order not found"), "{ack}");

    // The review: exactly the contract's shape, the comment trimmed, the buyer named by
    // the e-mail's local part.
    let ack = ask(
        &buyer,
        "review:create",
        json!({"orderId": order_id, "rating": 4, "comment": "  Clear and complete  "}),
    )
    .await;
    let review = ack["data"].clone();
    let mut keys: Vec<&str> = review
        .as_object()
        .expect("a review")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "buyerDisplayName",
            "comment",
            "createdAt",
            "id",
            "rating",
            "stuffId"
        ],
        "{ack}"
    );
    assert_eq!(
        review,
        json!({
            "id": review["id"],
            "stuffId": stuff_id,
            "rating": 4,
            "comment": "Clear and complete",
            "buyerDisplayName": "rita.b",
            "createdAt": review["createdAt"],
        })
    );
    assert!(review["id"].as_str().is_some_and(|id| !id.is_empty()));
    assert!(
        review["createdAt"]
            .as_str()
            .is_some_and(|t| chrono::DateTime::parse_from_rfc3339(t).is_ok()),
        "{review}"
    );

    // Once per order.
    let ack = ask(
        &buyer,
        "review:create",
        json!({"orderId": order_id, "rating": 5}),
    )
    .await;
    assert_eq!(err(&ack), (409, "You already reviewed this order"), "{ack}");

    // An order not paid for cannot be reviewed.
    let unpaid_stuff = listed(&seller, "Calculus slides").await;
    let unpaid = ask(&buyer, "order:create", json!({"stuffId": unpaid_stuff})).await;
    let ack = ask(
        &buyer,
        "review:create",
        json!({"orderId": unpaid["data"]["id"], "rating": 5}),
    )
    .await;
    assert_eq!(
        err(&ack),
        (409, "Only a paid order can be reviewed"),
        "{ack}"
    );

    // Anyone reads the reviews, newest first; the order says it was reviewed; the stuff's
    // rating follows (through review.created) without a new version.
    let list = ask(&anon, "review:list", json!({"stuffId": stuff_id})).await;
    assert_eq!(list["data"], json!([review]), "{list}");
    let none = ask(&anon, "review:list", json!({"stuffId": unpaid_stuff})).await;
    assert_eq!(none["data"], json!([]));
    let ack = ask(&anon, "review:list", json!({})).await;
    assert_eq!(
        (err(&ack).0, ack["errors"][0]["field"].as_str()),
        (400, Some("stuffId"))
    );
    let got = ask(&buyer, "order:get", json!({"id": order_id})).await;
    assert_eq!(
        (&got["data"]["reviewed"], &got["data"]["status"]),
        (&json!(true), &json!("complete")),
        "{got}"
    );
    let rated = eventually(T, "the stuff's rating", || async {
        let ack = ask(&anon, "stuff:get", json!({"id": stuff_id})).await;
        (ack["data"]["rating"]["count"] == 1).then_some(ack)
    })
    .await
    .unwrap();
    assert_eq!(
        rated["data"]["rating"],
        json!({"average": 4.0, "count": 1}),
        "{rated}"
    );
    let unrated = ask(&anon, "stuff:get", json!({"id": unpaid_stuff})).await;
    assert_eq!(
        unrated["data"]["rating"],
        json!({"average": 0.0, "count": 0})
    );
    // Best rated first.
    let page = ask(&anon, "stuff:list", json!({"sort": "rating", "limit": 1})).await;
    assert_eq!(page["data"]["items"][0]["id"], stuff_id.as_str(), "{page}");
    assert!(page["data"]["nextCursor"].is_string(), "{page}");
    sys.stop().await;
}
