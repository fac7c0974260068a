//! Optimistic concurrency: of many edits made from one read, exactly one wins.

use crate::helpers::App;
use serde_json::json;

#[tokio::test]
async fn concurrent_updates_with_one_version_let_exactly_one_win() {
    const N: usize = 20;
    let app = App::spawn().await;
    let (ann, _) = app.signup("ann@example.com").await;
    let s = app.create(&ann, "Popular", 1000).await;
    let id = s["id"].as_str().unwrap();

    let edits = (0..N).map(|i| {
        app.call(
            "stuff:update",
            Some(&ann),
            json!({"id": id, "version": 1, "title": format!("Edit {i}"), "priceCents": 1000 + i}),
        )
    });
    let results = futures_util::future::join_all(edits).await;
    let winners: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(winners.len(), 1, "exactly one edit wins: {results:?}");
    for e in results.iter().filter_map(|r| r.as_ref().err()) {
        assert_eq!(
            (e.status, e.first_message()),
            (409, "This stuff was changed by someone else")
        );
    }
    let now = app.get(id).await.unwrap();
    assert_eq!(now["version"], 2);
    assert_eq!(
        &now, winners[0],
        "the stored record is the winner's, not a mix"
    );
    app.done().await;
}
