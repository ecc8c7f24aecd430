//! Waiting for applications to be RUNNING: progress, failures, timeouts, a busy dashboard.

use super::*;

#[tokio::test]
async fn wait_running_polls_until_running_and_reports_progress() {
    let d = double(|i, _| match i {
        0 => Reply::Json(200, empty()),
        1 => Reply::Json(200, details("NOT_STARTED", "UPDATING", "")),
        2 => Reply::Json(200, details("DEPLOYING", "UPDATING", "")),
        _ => Reply::Json(200, details("RUNNING", "HEALTHY", "")),
    })
    .await;
    let mut seen = Vec::new();
    let st = client(&d)
        .wait_running(&["app"], Duration::from_secs(5), MS, |s| {
            seen.push(s.to_string())
        })
        .await
        .unwrap();
    assert_eq!(st.app("app").unwrap().status, AppStatus::Running);
    assert_eq!(seen.len(), 4, "{seen:?}");
    assert_eq!(seen[0], "no applications");
    assert!(seen[3].starts_with("app RUNNING"), "{seen:?}");
    // Empty `apps`: every listed application, and at least one.
    let d = double(|i, _| match i {
        0 => Reply::Json(200, empty()),
        _ => Reply::Json(200, details("RUNNING", "HEALTHY", "")),
    })
    .await;
    let mut n = 0;
    client(&d)
        .wait_running(&[] as &[&str], Duration::from_secs(5), MS, |_| n += 1)
        .await
        .unwrap();
    assert_eq!(n, 2);
}

#[tokio::test]
async fn a_failed_deploy_is_an_error_with_rays_message() {
    for status in ["DEPLOY_FAILED", "UNHEALTHY"] {
        let d = double(move |i, _| match i {
            0 => Reply::Json(200, details("DEPLOYING", "UPDATING", "")),
            _ => Reply::Json(
                200,
                details(
                    status,
                    "DEPLOY_FAILED",
                    "ModuleNotFoundError: No module named 'forward'",
                ),
            ),
        })
        .await;
        let e = client(&d)
            .wait_running(&["app"], Duration::from_secs(5), MS, |_| {})
            .await
            .unwrap_err();
        let RayError::AppFailed { app, status: s, .. } = &e else {
            panic!("{e:?}")
        };
        assert_eq!((app.as_str(), s.as_str()), ("app", status));
        let msg = e.to_string();
        assert!(msg.contains("No module named 'forward'"), "{msg}");
        assert!(
            msg.contains("deployment Forward DEPLOY_FAILED: replica died"),
            "{msg}"
        );
        assert_eq!(d.seen.lock().unwrap().len(), 2);
    }
}

#[tokio::test]
async fn wait_running_times_out_saying_the_last_status() {
    let d = double(|_, _| Reply::Json(200, details("DEPLOYING", "UPDATING", "pending"))).await;
    let e = client(&d)
        .wait_running(&["app"], Duration::from_millis(200), MS, |_| {})
        .await
        .unwrap_err();
    assert!(matches!(e, RayError::WaitTimeout { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.contains("Serve application(s) app to be RUNNING"),
        "{msg}"
    );
    assert!(
        msg.contains("last status: app DEPLOYING [Forward UPDATING 1/1] (pending)"),
        "{msg}"
    );
    // Another application RUNNING does not count for the one waited for.
    let d = double(|_, _| Reply::Json(200, details("RUNNING", "HEALTHY", ""))).await;
    let e = client(&d)
        .wait_running(&["other"], Duration::from_millis(100), MS, |_| {})
        .await
        .unwrap_err();
    assert!(e.to_string().contains("last status: app RUNNING"), "{e}");
}

#[tokio::test]
async fn wait_running_rides_out_a_busy_dashboard_but_not_a_client_error() {
    let d = double(|i, _| match i {
        0 => Reply::Text(503, "Failed to get a response from the controller.".into()),
        _ => Reply::Json(200, details("RUNNING", "HEALTHY", "")),
    })
    .await;
    client(&d)
        .wait_running(&["app"], Duration::from_secs(5), MS, |_| {})
        .await
        .unwrap();
    let d = double(|_, _| Reply::Text(503, "The GCS may be down".into())).await;
    let e = client(&d)
        .wait_running(&["app"], Duration::from_millis(100), MS, |_| {})
        .await
        .unwrap_err();
    assert!(e.to_string().contains("last status: error: GET"), "{e}");
    assert!(
        e.to_string().contains("HTTP 503: The GCS may be down"),
        "{e}"
    );
    let d = double(|_, _| Reply::Text(404, "404: Not Found".into())).await;
    let e = client(&d)
        .wait_running(&["app"], Duration::from_secs(5), MS, |_| {})
        .await
        .unwrap_err();
    assert!(matches!(e, RayError::Status { status: 404, .. }), "{e:?}");
}
