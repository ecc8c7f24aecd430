//! Reading Serve status: every status spelling, and strictness about the fields used.

use super::*;

#[tokio::test]
async fn status_reads_applications_deployments_and_messages() {
    let d = double(|_, _| Reply::Json(200, details("DEPLOYING", "UPDATING", "starting"))).await;
    let st = client(&d).status().await.unwrap();
    let seen = d.seen.lock().unwrap().clone();
    assert_eq!(
        (seen[0].method.as_str(), seen[0].path.as_str()),
        ("GET", "/api/serve/applications/")
    );
    assert!(seen[0].body.is_empty());
    let app = st.app("app").unwrap();
    assert_eq!(app.status, AppStatus::Deploying);
    assert_eq!(app.message, "starting");
    assert_eq!(app.route_prefix.as_deref(), Some("/"));
    let dep = &app.deployments["Forward"];
    assert_eq!(dep.status, DeploymentStatus::Updating);
    assert_eq!(dep.message, "replica died");
    assert_eq!((dep.replica_count, dep.target_num_replicas), (1, Some(1)));
    assert_eq!(st.http_options.as_ref().unwrap().port, Some(8123));
    assert_eq!(
        st.to_string(),
        "app DEPLOYING [Forward UPDATING 1/1] (starting)"
    );
    assert_eq!(
        app.messages(),
        "starting; deployment Forward UPDATING: replica died"
    );
}

#[test]
fn every_ray_status_spelling_parses() {
    for (s, want) in [
        ("NOT_STARTED", AppStatus::NotStarted),
        ("DEPLOYING", AppStatus::Deploying),
        ("RUNNING", AppStatus::Running),
        ("DEPLOY_FAILED", AppStatus::DeployFailed),
        ("DELETING", AppStatus::Deleting),
        ("UNHEALTHY", AppStatus::Unhealthy),
    ] {
        let st = ServeStatus::from_json(details(s, "HEALTHY", "").as_bytes()).unwrap();
        assert_eq!(st.app("app").unwrap().status, want);
        assert_eq!(want.as_str(), s);
    }
    for s in [
        "UPDATING",
        "HEALTHY",
        "UNHEALTHY",
        "DEPLOY_FAILED",
        "UPSCALING",
        "DOWNSCALING",
    ] {
        let st = ServeStatus::from_json(details("RUNNING", s, "").as_bytes()).unwrap();
        let d = &st.app("app").unwrap().deployments["Forward"].status;
        assert_eq!(d.as_str(), s);
        assert!(!matches!(d, DeploymentStatus::Other(_)));
    }
    // A deployment status from a later Ray is kept, not an error: it is only shown.
    let st = ServeStatus::from_json(details("RUNNING", "AUTOSCALING", "").as_bytes()).unwrap();
    assert_eq!(
        st.app("app").unwrap().deployments["Forward"].status,
        DeploymentStatus::Other("AUTOSCALING".into())
    );
}

#[tokio::test]
async fn status_is_strict_about_what_it_uses() {
    let no_apps = json!({"controller_info": {}}).to_string();
    let unknown = details("SLEEPING", "HEALTHY", "");
    let no_status = json!({"applications": {"app": {"message": "x"}}}).to_string();
    for (body, why) in [
        (no_apps, "missing field `applications`"),
        (unknown, "unknown variant `SLEEPING`"),
        (no_status, "missing field `status`"),
        ("<html>".to_string(), "expected value"),
    ] {
        let d = double(move |_, _| Reply::Json(200, body.clone())).await;
        let e = client(&d).status().await.unwrap_err();
        assert!(matches!(e, RayError::Parse { .. }), "{e:?}");
        let msg = e.to_string();
        assert!(msg.contains(why) && msg.contains(&d.url), "{msg}");
    }
    // Serve not running: no applications, no http_options; nulls are tolerated.
    let d = double(|_, _| Reply::Json(200, empty())).await;
    let st = client(&d).status().await.unwrap();
    assert!(st.applications.is_empty() && st.http_options.is_none());
    assert_eq!(st.to_string(), "no applications");
    let nulls =
        json!({"applications": {"a": {"status": "RUNNING", "message": null, "deployments": null}}});
    let st = ServeStatus::from_json(nulls.to_string().as_bytes()).unwrap();
    assert_eq!(st.app("a").unwrap().message, "");
}
