//! Browsing the catalogue as the router asks: `course` on create and update (normalized,
//! validated, removable), `stuff:list` by course, seller and price order, paged, and the
//! courses in use (`stuff:courses`).

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

#[tokio::test]
async fn the_courses_in_use_are_counted_most_listed_first() {
    let app = App::spawn().await;
    let (ann, _) = app.signup("ann@example.com").await;
    let empty = app.call("stuff:courses", None, json!({})).await.unwrap();
    assert_eq!(empty, json!([]));
    let mut ids = Vec::new();
    for (title, course) in [
        ("a", json!("CHEM 33")),
        ("b", json!("math 101")),
        ("c", json!("MATH 101")),
        ("d", json!("BIO 1")),
        ("e", json!(null)),
        ("f", json!("CHEM 33")),
        ("g", json!("ART 2")),
    ] {
        let s = app
            .call(
                "stuff:create",
                Some(&ann),
                json!({"title": title, "priceCents": 500, "course": course}),
            )
            .await
            .unwrap();
        ids.push(s["id"].as_str().unwrap().to_owned());
    }
    // A withdrawn listing is out of the catalogue, so its course no longer counts.
    app.call("stuff:withdraw", Some(&ann), json!({"id": ids[3]}))
        .await
        .unwrap();
    // Anyone may ask (the catalogue is public); ties go by course.
    let courses = app.call("stuff:courses", None, json!({})).await.unwrap();
    assert_eq!(
        courses,
        json!([
            {"course": "CHEM 33", "count": 2},
            {"course": "MATH 101", "count": 2},
            {"course": "ART 2", "count": 1},
        ])
    );
    app.done().await;
}

#[tokio::test]
async fn search_finds_every_word_best_matches_first_and_pages_across_both() {
    let app = App::spawn().await;
    let (ann, _) = app.signup("ann@example.com").await;
    for (title, description, course) in [
        ("Linear algebra notes", "All lectures", "MATH 201"),
        ("Calculus summaries", "Some linear algebra too", "MATH 101"),
        ("Algebra past exams", "Linear maps, solved", "MATH 201"),
        ("Chemistry flashcards", "Nothing linear", "CHEM 33"),
        ("Linear Algebra II slides", "Eigenvalues", "MATH 202"),
    ] {
        app.call(
            "stuff:create",
            Some(&ann),
            json!({"title": title, "description": description, "priceCents": 500, "course": course}),
        )
        .await
        .unwrap();
    }
    // Every word, as a word or its start, in any field; title matches first, each part
    // newest first; two per page, the cursor crossing from one part to the other.
    let mut seen = Vec::new();
    let mut cursor = Value::Null;
    loop {
        let page = app
            .call(
                "stuff:list",
                None,
                json!({"q": "LINEAR alg", "limit": 2, "cursor": cursor}),
            )
            .await
            .unwrap();
        seen.extend(titles(&page).into_iter().map(str::to_owned));
        cursor = page["nextCursor"].clone();
        if cursor.is_null() {
            break;
        }
    }
    assert_eq!(
        seen,
        vec![
            "Linear Algebra II slides",
            "Linear algebra notes",
            "Algebra past exams",
            "Calculus summaries"
        ]
    );
    // With a sort, the matches come in that order; the course is searched too.
    let by_course = app
        .call(
            "stuff:list",
            None,
            json!({"q": "math 201", "sort": "newest"}),
        )
        .await
        .unwrap();
    assert_eq!(
        titles(&by_course),
        vec!["Algebra past exams", "Linear algebra notes"]
    );
    // A relevance cursor does not continue a sorted list; too long a search is refused.
    let first = app
        .call("stuff:list", None, json!({"q": "linear", "limit": 1}))
        .await
        .unwrap();
    let e = app
        .call(
            "stuff:list",
            None,
            json!({"q": "linear", "sort": "newest", "cursor": first["nextCursor"]}),
        )
        .await
        .unwrap_err();
    assert_eq!(fields(&e), vec!["cursor"]);
    let e = app
        .call("stuff:list", None, json!({"q": "x".repeat(101)}))
        .await
        .unwrap_err();
    assert_eq!(
        (fields(&e), e.first_message()),
        (vec!["q"], "Search must be text of at most 100 characters")
    );
    // No word at all: the whole catalogue, newest first.
    let all = app
        .call("stuff:list", None, json!({"q": " ?! "}))
        .await
        .unwrap();
    assert_eq!(titles(&all).len(), 5);
    app.done().await;
}
