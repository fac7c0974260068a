//! Browsing the catalogue as the router asks: `course` on create and update (normalized,
//! validated, removable), and `stuff:list` by course, seller and price order, paged.

use crate::helpers::{App, fields};
use serde_json::{Value, json};

fn titles(page: &Value) -> Vec<&str> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["title"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn courses_filters_and_price_order_page_through_the_catalogue() {
    let app = App::spawn().await;
    let (ann, ann_id) = app.signup("ann@example.com").await;
    let (bob, _) = app.signup("bob@example.com").await;
    let make = |token: String, title: &'static str, price: i64, course: Value| {
        let app = &app;
        async move {
            app.call(
                "stuff:create",
                Some(&token),
                json!({"title": title, "priceCents": price, "course": course}),
            )
            .await
            .unwrap()
        }
    };
    let a = make(ann.clone(), "Algebra", 900, json!("  math  101 ")).await;
    assert_eq!(a["course"], "MATH 101", "trimmed, one space, upper-case");
    make(bob.clone(), "Analysis", 400, json!("MATH 101")).await;
    make(ann.clone(), "Biology", 700, json!(null)).await;
    make(ann.clone(), "Calculus", 400, json!("math 101")).await;

    // Refused on the field, at create and update alike.
    let e = app
        .call(
            "stuff:create",
            Some(&ann),
            json!({"title": "x", "priceCents": 100, "course": "C"}),
        )
        .await
        .unwrap_err();
    assert_eq!(
        (fields(&e), e.first_message()),
        (
            vec!["course"],
            "Course must be 2 to 20 letters, digits, spaces or dashes"
        )
    );
    let id = a["id"].as_str().unwrap();
    let e = app
        .call(
            "stuff:update",
            Some(&ann),
            json!({"id": id, "course": "CS_101"}),
        )
        .await
        .unwrap_err();
    assert_eq!(fields(&e), vec!["course"]);

    // One course, cheapest first, two per page: the cursor carries the order.
    let first = app
        .call(
            "stuff:list",
            None,
            json!({"course": "Math 101", "sort": "priceAsc", "limit": 2}),
        )
        .await
        .unwrap();
    // Equal prices are ordered by id: Analysis was listed before Calculus.
    assert_eq!(titles(&first), vec!["Analysis", "Calculus"]);
    let second = app
        .call(
            "stuff:list",
            None,
            json!({"course": "MATH 101", "sort": "priceAsc", "limit": 2, "cursor": first["nextCursor"]}),
        )
        .await
        .unwrap();
    assert_eq!(
        (titles(&second), &second["nextCursor"]),
        (vec!["Algebra"], &Value::Null)
    );
    // That cursor does not continue another order.
    let e = app
        .call(
            "stuff:list",
            None,
            json!({"course": "MATH 101", "sort": "priceDesc", "cursor": first["nextCursor"]}),
        )
        .await
        .unwrap_err();
    assert_eq!(fields(&e), vec!["cursor"]);

    // One seller, dearest first; every sort name and a bad one.
    let anns = app
        .call(
            "stuff:list",
            None,
            json!({"sellerId": ann_id, "sort": "priceDesc"}),
        )
        .await
        .unwrap();
    assert_eq!(titles(&anns), vec!["Algebra", "Biology", "Calculus"]);
    let newest = app
        .call("stuff:list", None, json!({"sort": "newest"}))
        .await
        .unwrap();
    assert_eq!(
        titles(&newest),
        vec!["Calculus", "Biology", "Analysis", "Algebra"]
    );
    let e = app
        .call("stuff:list", None, json!({"sort": "cheapest", "course": 7}))
        .await
        .unwrap_err();
    assert_eq!(fields(&e), vec!["course", "sort"]);
    assert_eq!(
        e.errors[1].message,
        "Sort must be one of newest, priceAsc, priceDesc, rating"
    );

    // Moving a stuff out of the course.
    let moved = app
        .call("stuff:update", Some(&ann), json!({"id": id, "course": ""}))
        .await
        .unwrap();
    assert_eq!(moved["course"], Value::Null);
    let left = app
        .call("stuff:list", None, json!({"course": "MATH 101"}))
        .await
        .unwrap();
    assert_eq!(titles(&left), vec!["Calculus", "Analysis"]);
    app.done().await;
}
