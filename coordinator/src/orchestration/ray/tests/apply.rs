//! Applying a Serve config: what is sent, and what a rejected or malformed config says.

use super::*;

#[tokio::test]
async fn apply_puts_the_config_as_json() {
    let d = double(|_, _| Reply::Text(200, String::new())).await;
    client(&d).apply(&config()).await.unwrap();
    let seen = d.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].method, "PUT");
    assert_eq!(seen[0].path, "/api/serve/applications/");
    assert_eq!(seen[0].header("content-type"), Some("application/json"));
    assert!(seen[0].header("authorization").is_none());
    // Not taken for a browser (Ray redacts or refuses those).
    assert!(!seen[0].header("user-agent").unwrap().starts_with("Mozilla"));
    let body: serde_json::Value = serde_json::from_slice(&seen[0].body).unwrap();
    assert_eq!(body, config());
}

#[tokio::test]
async fn apply_sends_the_token_and_keeps_a_path_prefix() {
    let d = double(|_, _| Reply::Text(200, String::new())).await;
    let mut c = RayServeClient::new(&format!("{}/ray/", d.url)).unwrap();
    c.auth_token = Some("s3cret".into());
    assert!(!format!("{c:?}").contains("s3cret"));
    c.apply(&config()).await.unwrap();
    let seen = d.seen.lock().unwrap().clone();
    assert_eq!(seen[0].path, "/ray/api/serve/applications/");
    assert_eq!(seen[0].header("authorization"), Some("Bearer s3cret"));
}

#[tokio::test]
async fn a_rejected_config_names_url_status_and_rays_reason() {
    let d = double(|_, _| {
        Reply::Text(
            400,
            "1 validation error for ServeDeploySchema\napplications.0.import_path\n  Field required"
                .into(),
        )
    })
    .await;
    let e = client(&d).apply(&config()).await.unwrap_err();
    let RayError::Status { status, .. } = &e else {
        panic!("{e:?}")
    };
    assert_eq!(*status, 400);
    let msg = e.to_string();
    assert!(
        msg.starts_with(&format!("PUT {}/api/serve/applications/: HTTP 400:", d.url)),
        "{msg}"
    );
    assert!(
        msg.contains("import_path") && msg.contains("Field required"),
        "{msg}"
    );
    assert!(!e.is_transient());
}

#[tokio::test]
async fn a_malformed_config_is_refused_before_any_request() {
    let d = double(|_, _| Reply::Text(200, String::new())).await;
    let c = client(&d);
    for (bad, why) in [
        (json!([1]), "JSON object"),
        (json!({"apps": []}), "\"applications\" list"),
        (json!({"applications": [1]}), "applications[0]"),
        (
            json!({"applications": [{"name": 3}]}),
            "name is not a string",
        ),
        (
            json!({"applications": [{"name": "a"}, {"name": "a"}]}),
            "appears twice",
        ),
        (
            json!({"applications": [{}, {}]}),
            "\"default\" appears twice",
        ),
    ] {
        let e = c.apply(&bad).await.unwrap_err();
        assert!(
            matches!(e, RayError::Config(_)) && e.to_string().contains(why),
            "{e}"
        );
    }
    assert!(d.seen.lock().unwrap().is_empty());
    assert_eq!(app_names(&config()).unwrap(), ["app"]);
    assert_eq!(
        app_names(&json!({"applications": [{}]})).unwrap(),
        ["default"]
    );
}
