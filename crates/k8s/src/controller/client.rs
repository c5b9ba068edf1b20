//! The generic API steps both reconcilers use: a fresh read past the informer cache, a whole-status
//! server-side apply, best-effort Events, and the check of names before they go into a request.

use std::future::Future;
use std::time::{Duration, Instant};

use kube::api::{Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder};
use kube::{Api, Client, Resource, ResourceExt};

use super::watched::{shorten, Watched};

/// Field manager of the controller's server-side applies.
pub const FIELD_MANAGER: &str = "blis-controller";

/// Writes the whole status of the `K` object `ns/name` by server-side apply (scenarios and sweeps)
/// and returns the status as the API server stored it (what a later read gives back), when it parses.
pub(crate) async fn apply_status_of<K, S>(
    client: &Client,
    ns: &str,
    name: &str,
    status: &S,
) -> Result<Option<S>, kube::Error>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>,
    S: serde::Serialize + serde::de::DeserializeOwned,
{
    let api = Api::<Watched<K>>::namespaced(client.clone(), ns);
    let patch = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    let stored =
        api.patch_status(name, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&patch)).await?;
    Ok(stored.status())
}

/// `obj` as the API server has it now (the informer cache may lag behind a status just written),
/// or `None` when it is gone or replaced by a new object of the same name. Read as [`Watched`], so
/// no object the API server accepted fails to decode.
pub(crate) async fn fresh<K>(client: &Client, obj: &impl Resource) -> Result<Option<Watched<K>>, kube::Error>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>,
{
    let api = Api::<Watched<K>>::namespaced(client.clone(), &obj.namespace().unwrap_or_default());
    Ok(api.get_opt(&obj.name_any()).await?.filter(|o| o.uid() == obj.uid()))
}

/// How long a finished run (a scenario's or a sweep's) keeps trying to read its object and write
/// its result while the API server cannot be reached: an outage must not cost the run, nor run it
/// again.
pub(crate) const RESULT_WRITE_PATIENCE: Duration = Duration::from_secs(120);

/// Repeats `attempt` after a short backoff while it fails transiently ([`transient`]), for at most
/// [`RESULT_WRITE_PATIENCE`] and while `still_current()` holds (the run was not superseded or
/// deleted meanwhile); returns the last outcome. What a finished run does to write its result.
pub(crate) async fn retry_transient<T, Fut>(
    what: &str,
    still_current: impl Fn() -> bool,
    mut attempt: impl FnMut() -> Fut,
) -> Result<T, kube::Error>
where
    Fut: Future<Output = Result<T, kube::Error>>,
{
    let start = Instant::now();
    let mut backoff = super::triggers::QuickBackoff::default();
    loop {
        match attempt().await {
            Err(e) if transient(&e) && start.elapsed() < RESULT_WRITE_PATIENCE => {
                tracing::info!(what, error = %e, "the API server cannot be reached yet; retrying");
                tokio::time::sleep(backoff.next().unwrap_or(Duration::from_secs(1))).await;
                if !still_current() {
                    return Err(e);
                }
            }
            other => return other,
        }
    }
}

/// Whether a failed request may succeed when repeated unchanged: the API server could not be
/// reached or did not answer in time (connection, timeout, hyper and tower service errors, an
/// interrupted response stream), or answered that it is overloaded (429) or failing (5xx).
/// Everything else is a refusal or a fault of this client and repeating it cannot help: the other
/// API answers (404 gone, 422 invalid, 413 too large, and 409 conflict, since no caller re-reads
/// the object between attempts: a forced server-side apply or a plain read is repeated unchanged),
/// an undecodable response, a request that cannot be built, configuration, TLS and auth errors.
pub(crate) fn transient(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(s) => s.code >= 500 || s.code == 429,
        kube::Error::HyperError(_) | kube::Error::Service(_) | kube::Error::ReadEvents(_) => true,
        _ => false,
    }
}

/// Publishes a Kubernetes Event about `obj`; a failure is only logged (Events are best effort).
pub(crate) async fn publish_event<K: Resource<DynamicType = ()>>(
    recorder: &Recorder,
    obj: &K,
    type_: EventType,
    reason: &str,
    action: &str,
    note: String,
) {
    // The API server refuses notes over 1 kB.
    let note = shorten(&note, 900);
    let ev = Event { type_, reason: reason.into(), note: Some(note), action: action.into(), secondary: None };
    if let Err(e) = recorder.publish(&ev, &obj.object_ref(&())).await {
        tracing::warn!(error = %e, "cannot publish event");
    }
}

/// Whether `s` may be the name of a cluster object (a DNS subdomain: lower-case alphanumerics, `-`, `.`).
pub fn is_dns_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(code: u16) -> kube::Error {
        kube::Error::Api(Box::new(kube::core::Status::failure("refused", "Reason").with_code(code)))
    }

    #[test]
    fn overload_and_server_failures_are_transient_other_answers_are_not() {
        for code in [429, 500, 502, 503, 504] {
            assert!(transient(&api(code)), "{code}");
        }
        for code in [400, 401, 403, 404, 409, 410, 413, 422] {
            assert!(!transient(&api(code)), "{code}");
        }
    }

    #[test]
    fn unreachable_or_timed_out_server_is_transient() {
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
        assert!(transient(&kube::Error::Service(Box::new(refused))));
        let timeout = std::io::Error::new(std::io::ErrorKind::TimedOut, "deadline elapsed");
        assert!(transient(&kube::Error::Service(Box::new(timeout))));
        let cut = std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "stream cut");
        assert!(transient(&kube::Error::ReadEvents(cut)));
    }

    #[test]
    fn faults_of_the_request_or_the_response_are_permanent() {
        let decode = serde_json::from_str::<serde_json::Value>("{not json").unwrap_err();
        assert!(!transient(&kube::Error::SerdeError(decode)));
        let utf8 = String::from_utf8(vec![0xff, 0xfe]).unwrap_err();
        assert!(!transient(&kube::Error::FromUtf8(utf8)));
        let http = http::Request::builder().uri("bad uri with spaces").body(()).unwrap_err();
        assert!(!transient(&kube::Error::HttpError(http)));
        assert!(!transient(&kube::Error::TlsRequired));
        assert!(!transient(&kube::Error::LinesCodecMaxLineLengthExceeded));
    }

    #[test]
    fn profile_object_names_are_dns_names() {
        assert!(is_dns_name("my-gpu") && !is_dns_name("H100-SXM-80GB"));
    }
}
