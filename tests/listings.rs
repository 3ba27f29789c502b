//! Listing tags and the catalog: order, paging and `Link` headers.

mod common;

use common::*;
use serde_json::Value;

/// Tags pushed in an order that is not the listing order; mixed case,
/// digits and punctuation, so lexical (byte) order is really checked.
const TAGS: [&str; 10] = [
    "latest",
    "Latest",
    "v1.10",
    "1.0",
    "v1.9",
    "Alpha",
    "_internal",
    "beta",
    "v1.9-rc1",
    "A",
];

/// `TAGS` in the order the spec asks for (byte-wise, like Go's sort.Strings).
fn sorted(names: &[&str]) -> Vec<String> {
    let mut names: Vec<String> = names.iter().map(|t| t.to_string()).collect();
    names.sort();
    names
}

/// One image, tagged with every tag of `tags`.
async fn push_tags(registry: &RegistryClient, repo: &str, tags: &[&str]) {
    let image = registry.push_image(repo, tags[0]).await;
    for tag in &tags[1..] {
        registry.push_manifest(repo, tag, &image.manifest).await;
    }
}

/// A page of `app`'s tags, for `query`: the tags and the `Link`, if any.
async fn app_tags_page(registry: &RegistryClient, query: &str) -> (Vec<String>, Option<String>) {
    page(registry.list_tags("app", query).await, "tags").await
}

/// A registry holding `v1` of an image in each of [`REPOSITORIES`].
async fn registry_with_every_repository() -> TestRegistry {
    let registry = TestRegistry::start().await;
    for repo in REPOSITORIES {
        registry.push_image(repo, "v1").await;
    }
    registry
}

/// The body's list under `key` and the `Link` header, if any.
async fn page(response: reqwest::Response, key: &str) -> (Vec<String>, Option<String>) {
    let response = expect_status(response, StatusCode::OK).await;
    assert_header(&response, "content-type", "application/json");
    let link = response
        .headers()
        .get("link")
        .map(|l| l.to_str().unwrap().to_owned());
    let body: Value = response.json().await.expect("listing is JSON");
    (string_list(&body[key]), link)
}

/// The target of a `Link: <url>; rel="next"` header.
fn next_page(link: &str) -> String {
    let (target, relation) = link
        .split_once(';')
        .unwrap_or_else(|| panic!("Link {link:?} has no parameters"));
    assert_eq!(relation.trim(), "rel=\"next\"", "relation in {link:?}");
    target
        .trim()
        .strip_prefix('<')
        .and_then(|t| t.strip_suffix('>'))
        .unwrap_or_else(|| panic!("Link {link:?} has no <target>"))
        .to_owned()
}

/// Everything, following `Link` headers from `first_page`.
async fn follow_links(
    registry: &RegistryClient,
    first_page: &str,
    key: &str,
    page_size: usize,
) -> Vec<String> {
    let mut all = Vec::new();
    let mut next = Some(first_page.to_owned());
    while let Some(url) = next.take() {
        let (items, link) = page(registry.get(&url).await, key).await;
        assert!(items.len() <= page_size, "{url} gave {items:?}");
        if link.is_some() {
            assert_eq!(items.len(), page_size, "a page before the last is full");
        }
        all.extend(items);
        next = link.as_deref().map(next_page);
    }
    all
}

#[tokio::test]
async fn tags_are_listed_in_lexical_order() {
    let registry = TestRegistry::start().await;
    push_tags(&registry, "app", &TAGS).await;

    let (tags, link) = app_tags_page(&registry, "").await;

    assert_eq!(tags, sorted(&TAGS));
    assert!(link.is_none(), "unexpected Link {link:?}");
}

#[tokio::test]
async fn tag_list_names_the_repository() {
    let registry = TestRegistry::start().await;
    push_tags(&registry, "team/app", &["v1"]).await;

    let response = expect_status(registry.list_tags("team/app", "").await, StatusCode::OK).await;

    let body: Value = response.json().await.unwrap();
    assert_eq!(body["name"], "team/app");
    assert_eq!(string_list(&body["tags"]), vec!["v1"]);
}

#[tokio::test]
async fn tags_page_by_n_with_a_link_to_the_next_page() {
    let registry = TestRegistry::start().await;
    push_tags(&registry, "app", &TAGS).await;
    let expected = sorted(&TAGS);

    let (first, link) = app_tags_page(&registry, "?n=2").await;

    assert_eq!(first, expected[..2]);
    let link = link.expect("a Link to the next page");
    assert_eq!(
        next_page(&link),
        format!("/v2/app/tags/list?n=2&last={}", expected[1])
    );
    assert_eq!(
        follow_links(&registry, "/v2/app/tags/list?n=2", "tags", 2).await,
        expected
    );
}

/// Listings are served from memory on the embedded database; each change
/// to a repository's tags must show in the very next listing.
#[tokio::test]
async fn tag_list_follows_every_change() {
    let registry = TestRegistry::start().await;
    let first = registry.push_image("app", "v1").await;
    registry.push_manifest("app", "v2", &first.manifest).await;
    assert_eq!(registry.tags("app").await, ["v1", "v2"]);
    let (page_one, _) = app_tags_page(&registry, "?n=1").await;
    assert_eq!(page_one, ["v1"]);

    let second = registry.push_image("app", "v3").await;
    assert_eq!(registry.tags("app").await, ["v1", "v2", "v3"]);
    let (after_v1, link) = app_tags_page(&registry, "?n=1&last=v1").await;
    assert_eq!(after_v1, ["v2"]);
    assert!(link.is_some(), "v3 follows v2");

    expect_status(
        registry.delete_manifest("app", "v2").await,
        StatusCode::ACCEPTED,
    )
    .await;
    assert_eq!(registry.tags("app").await, ["v1", "v3"]);

    // Moving a tag keeps the list; deleting the manifest drops its tags.
    registry.push_manifest("app", "v1", &second.manifest).await;
    assert_eq!(registry.tags("app").await, ["v1", "v3"]);
    expect_status(
        registry.delete_manifest("app", &second.digest).await,
        StatusCode::ACCEPTED,
    )
    .await;
    assert_eq!(registry.tags("app").await, Vec::<String>::new());
    let (none, link) = app_tags_page(&registry, "?n=5").await;
    assert!(none.is_empty() && link.is_none(), "{none:?} {link:?}");
}

#[tokio::test]
async fn tags_after_last() {
    let registry = TestRegistry::start().await;
    push_tags(&registry, "app", &TAGS).await;
    let expected = sorted(&TAGS);

    let (tags, _) = app_tags_page(&registry, &format!("?n=3&last={}", expected[2])).await;
    assert_eq!(tags, expected[3..6]);

    // `last` alone: everything after it.
    let (tags, link) = app_tags_page(&registry, &format!("?last={}", expected[4])).await;
    assert_eq!(tags, expected[5..]);
    assert!(link.is_none());

    // A `last` that is not a tag still orders: everything after it.
    let (tags, _) = app_tags_page(&registry, "?last=b").await;
    let after_b: Vec<String> = expected
        .iter()
        .filter(|t| t.as_str() > "b")
        .cloned()
        .collect();
    assert_eq!(tags, after_b);
}

#[tokio::test]
async fn last_page_has_no_link() {
    let registry = TestRegistry::start().await;
    push_tags(&registry, "app", &TAGS).await;
    let expected = sorted(&TAGS);

    for n in [TAGS.len(), TAGS.len() + 5] {
        let (tags, link) = app_tags_page(&registry, &format!("?n={n}")).await;
        assert_eq!(tags, expected, "n={n}");
        assert!(link.is_none(), "n={n}: unexpected Link {link:?}");
    }
}

#[tokio::test]
async fn n_zero_lists_no_tags_and_no_link() {
    let registry = TestRegistry::start().await;
    push_tags(&registry, "app", &TAGS).await;

    let (tags, link) = app_tags_page(&registry, "?n=0").await;

    assert!(tags.is_empty(), "{tags:?}");
    assert!(link.is_none(), "unexpected Link {link:?}");
}

#[tokio::test]
async fn repository_without_tags_lists_none() {
    let registry = TestRegistry::start().await;
    let image = registry.push_image("app", "v1").await;
    expect_status(
        registry.delete_manifest("app", "v1").await,
        StatusCode::ACCEPTED,
    )
    .await;
    registry
        .push_manifest("app", &image.digest, &image.manifest)
        .await;

    assert!(registry.tags("app").await.is_empty());
}

#[tokio::test]
async fn tags_of_an_unknown_repository_are_404() {
    let registry = TestRegistry::start().await;
    push_tags(&registry, "app", &["v1"]).await;

    for query in ["", "?n=0", "?n=10"] {
        let response = registry.list_tags("no/such/repo", query).await;
        assert_error(response, StatusCode::NOT_FOUND, "NAME_UNKNOWN").await;
    }
}

#[tokio::test]
async fn malformed_n_is_400() {
    let registry = TestRegistry::start().await;
    push_tags(&registry, "app", &["v1"]).await;

    for n in ["-1", "abc", "1.5", ""] {
        let response = registry.list_tags("app", &format!("?n={n}")).await;
        assert_error(response, StatusCode::BAD_REQUEST, "UNSUPPORTED").await;
        let response = registry.catalog(&format!("?n={n}")).await;
        assert_error(response, StatusCode::BAD_REQUEST, "UNSUPPORTED").await;
    }
}

#[tokio::test]
async fn tags_of_an_invalid_repository_name_are_400() {
    let registry = TestRegistry::start().await;

    let response = registry.list_tags("Not/Valid", "").await;

    assert_error(response, StatusCode::BAD_REQUEST, "NAME_INVALID").await;
}

const REPOSITORIES: [&str; 6] = ["web", "app", "team/app", "team-b/app", "alpha", "app/sub"];

#[tokio::test]
async fn catalog_lists_repositories_in_lexical_order() {
    let registry = registry_with_every_repository().await;

    let (repositories, link) = page(registry.catalog("").await, "repositories").await;

    assert_eq!(repositories, sorted(&REPOSITORIES));
    assert!(link.is_none());
}

#[tokio::test]
async fn catalog_pages_with_links() {
    let registry = registry_with_every_repository().await;
    let expected = sorted(&REPOSITORIES);

    let (first, link) = page(registry.catalog("?n=4").await, "repositories").await;

    assert_eq!(first, expected[..4]);
    let link = link.expect("a Link to the next page");
    let target = next_page(&link);
    assert!(target.starts_with("/v2/_catalog?"), "{target}");
    assert_eq!(
        follow_links(&registry, "/v2/_catalog?n=4", "repositories", 4).await,
        expected
    );
    assert_eq!(
        follow_links(&registry, "/v2/_catalog?n=1", "repositories", 1).await,
        expected
    );
}

#[tokio::test]
async fn catalog_after_last_and_with_n_zero() {
    let registry = registry_with_every_repository().await;
    let expected = sorted(&REPOSITORIES);

    let (after, _) = page(
        registry.catalog(&format!("?last={}", expected[1])).await,
        "repositories",
    )
    .await;
    assert_eq!(after, expected[2..]);

    let (none, link) = page(registry.catalog("?n=0").await, "repositories").await;
    assert!(none.is_empty());
    assert!(link.is_none());
}

#[tokio::test]
async fn empty_registry_has_an_empty_catalog() {
    let registry = TestRegistry::start().await;

    let (repositories, link) = page(registry.catalog("").await, "repositories").await;

    assert!(repositories.is_empty());
    assert!(link.is_none());
}
