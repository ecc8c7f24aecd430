//! Deleting applications, bounded bodies and timeouts, unreachable and invalid dashboard URLs.

use super::*;

#[tokio::test]
async fn delete_sends_delete_then_waits_until_gone() {
    let d = double(|i, _| match i {
        0 => Reply::Text(200, String::new()),
        1 => Reply::Json(200, details("DELETING", "HEALTHY", "")),
        _ => Reply::Json(200, empty()),
    })
    .await;
    client(&d).delete(Duration::from_secs(5), MS).await.unwrap();
    let seen = d.seen.lock().unwrap().clone();
    let calls: Vec<_> = seen
        .iter()
        .map(|s| (s.method.as_str(), s.path.as_str()))
        .collect();
    assert_eq!(
        calls,
        [
            ("DELETE", "/api/serve/applications/"),
            ("GET", "/api/serve/applications/"),
            ("GET", "/api/serve/applications/")
        ]
    );
    assert!(seen[0].body.is_empty());
    // Still there at the deadline: a timeout naming what was left.
    let d = double(|i, _| match i {
        0 => Reply::Text(200, String::new()),
        _ => Reply::Json(200, details("DELETING", "HEALTHY", "")),
    })
    .await;
    let e = client(&d)
        .delete(Duration::from_millis(200), MS)
        .await
        .unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("every Serve application to be gone"), "{msg}");
    assert!(msg.contains("last status: app DELETING"), "{msg}");
    // A refused DELETE is reported as such.
    let d = double(|_, _| Reply::Text(500, "boom".into())).await;
    let e = client(&d)
        .delete(Duration::from_secs(5), MS)
        .await
        .unwrap_err();
    assert!(
        e.to_string().starts_with(&format!(
            "DELETE {}/api/serve/applications/: HTTP 500: boom",
            d.url
        )),
        "{e}"
    );
}

#[tokio::test]
async fn bodies_are_bounded_and_calls_time_out() {
    let d = double(|_, _| Reply::Json(200, details("RUNNING", "HEALTHY", ""))).await;
    let mut c = client(&d);
    c.max_response_bytes = 100;
    let e = c.status().await.unwrap_err();
    assert!(matches!(e, RayError::TooLarge { limit: 100, .. }), "{e:?}");
    assert!(e.to_string().contains(&d.url), "{e}");
    // An error body is clipped, not refused.
    let d = double(|_, _| Reply::Text(400, "x".repeat(100_000))).await;
    let e = client(&d).apply(&config()).await.unwrap_err();
    assert!(matches!(e, RayError::Status { status: 400, .. }), "{e:?}");
    assert!(e.to_string().len() < 2200 && e.to_string().ends_with('…'));

    let d = double(|_, _| Reply::Hang).await;
    let mut c = client(&d);
    c.request_timeout = Duration::from_millis(200);
    let e = c.status().await.unwrap_err();
    assert!(
        matches!(e, RayError::Timeout { .. }) && e.is_transient(),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        format!(
            "GET {}/api/serve/applications/: no complete response within 200ms",
            d.url
        )
    );
}

#[tokio::test]
async fn an_unreachable_dashboard_names_the_url() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let c = RayServeClient::new(&format!("127.0.0.1:{port}")).unwrap();
    assert_eq!(c.base_url(), format!("http://127.0.0.1:{port}"));
    let e = c.status().await.unwrap_err();
    assert!(
        matches!(e, RayError::Connect { .. }) && e.is_transient(),
        "{e:?}"
    );
    assert!(
        e.to_string().starts_with(&format!(
            "GET http://127.0.0.1:{port}/api/serve/applications/: "
        )),
        "{e}"
    );
}

#[test]
fn dashboard_urls_are_checked() {
    for bad in [
        "https://head:8265",
        "http://",
        "http://h:1/?x=1",
        "http://h:notaport",
    ] {
        let e = RayServeClient::new(bad).unwrap_err();
        assert!(matches!(e, RayError::Url { .. }), "{bad}: {e:?}");
    }
    let c = RayServeClient::new("http://head:8265/").unwrap();
    assert_eq!(
        c.applications_url(),
        "http://head:8265/api/serve/applications/"
    );
}
