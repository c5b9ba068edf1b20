//! The watch streams that trigger reconciles, built so an API-server outage or a relist loses
//! nothing and stalls nothing:
//!
//! - each watch has its own short backoff ([`QuickBackoff`]) and its errors end there (logged), so
//!   one failing watch never pauses the others (a controller's own trigger backoff is shared by
//!   all of its watches);
//! - the controller's own kind is cached, and after every (re)list the whole cache is emitted once
//!   the list is complete: an object created while a watch was down is reconciled from the cache
//!   that holds it (a list's objects reach the cache only when the list ends, so triggering on
//!   each listed object asked for objects the cache did not hold yet, and those were dropped), and
//!   an object changed meanwhile is reconciled from its new version.

use std::fmt::Debug;
use std::hash::Hash;
use std::time::{Duration, Instant};

use futures::{stream, Stream, StreamExt};
use kube::runtime::reflector::store::Writer;
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Resource};
use serde::de::DeserializeOwned;

/// The objects of `api`, cached in `writer`'s store: each added or changed object, and after every
/// complete (re)list every cached object. A deleted object is passed to `on_delete` (to cancel its
/// run at once). Errors are retried after [`QuickBackoff`] and logged.
pub fn cached<K>(
    api: Api<K>,
    wc: watcher::Config,
    writer: Writer<K>,
    on_delete: impl Fn(&K) + Send + 'static,
) -> impl Stream<Item = Result<K, watcher::Error>> + Send + 'static
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Eq + Hash + Clone + Default + Send + Sync,
{
    let kind = <K as Resource>::kind(&Default::default()).into_owned();
    let events = watcher(api, wc).backoff(QuickBackoff::default()).map(move |e| {
        if let Err(err) = &e {
            tracing::warn!(kind, error = %err, "watch failed; retrying");
        }
        e
    });
    cache_events(events, writer, on_delete)
}

/// [`cached`] over any stream of watch events (the unit of what it does, testable without a server).
pub fn cache_events<K, S>(
    events: S,
    writer: Writer<K>,
    on_delete: impl Fn(&K) + Send + 'static,
) -> impl Stream<Item = Result<K, watcher::Error>> + Send
where
    K: Resource + Clone + Send + Sync + 'static,
    K::DynamicType: Eq + Hash + Clone + Send + Sync,
    S: Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static,
{
    let reader = writer.as_reader();
    events
        .reflect(writer)
        .map(move |event| {
            let objects: Vec<K> = match event {
                Ok(watcher::Event::Apply(o)) => vec![o],
                // The store holds the complete list only now.
                Ok(watcher::Event::InitDone) => reader.state().iter().map(|o| (**o).clone()).collect(),
                Ok(watcher::Event::Delete(o)) => {
                    on_delete(&o);
                    Vec::new()
                }
                Ok(_) | Err(_) => Vec::new(),
            };
            stream::iter(objects.into_iter().map(Ok))
        })
        .flatten()
}

/// The objects of `api` that were added, changed or deleted (and all of them after a relist), for
/// the watches of referenced or owned kinds. Errors are retried after [`QuickBackoff`] and logged.
pub fn touched<K>(api: Api<K>, wc: watcher::Config) -> impl Stream<Item = Result<K, watcher::Error>> + Send
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
    K::DynamicType: Default,
{
    let kind = K::kind(&Default::default()).into_owned();
    touched_objects(watcher(api, wc), kind)
}

/// [`touched`] for a kind known only at run time (`kind` names it in logs).
pub fn touched_dynamic(
    api: Api<kube::api::DynamicObject>,
    wc: watcher::Config,
    kind: &str,
) -> impl Stream<Item = Result<kube::api::DynamicObject, watcher::Error>> + Send {
    touched_objects(watcher(api, wc), kind.to_string())
}

fn touched_objects<K, S>(events: S, kind: String) -> impl Stream<Item = Result<K, watcher::Error>> + Send
where
    K: Resource + Send + 'static,
    S: Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static,
{
    events.backoff(QuickBackoff::default()).touched_objects().filter_map(move |r| {
        futures::future::ready(match r {
            Ok(o) => Some(Ok(o)),
            Err(e) => {
                tracing::warn!(kind, error = %e, "watch failed; retrying");
                None
            }
        })
    })
}

/// The backoff of one watch: 250 ms doubling to at most 5 s, back to the start after 10 s without
/// a failure, so a short API-server outage costs seconds, not minutes.
pub struct QuickBackoff {
    next: Duration,
    last: Option<Instant>,
}

/// First delay of [`QuickBackoff`].
const FIRST: Duration = Duration::from_millis(250);
/// Longest delay of [`QuickBackoff`].
const CAP: Duration = Duration::from_secs(5);

impl Default for QuickBackoff {
    fn default() -> Self {
        Self { next: FIRST, last: None }
    }
}

impl Iterator for QuickBackoff {
    type Item = Duration;
    fn next(&mut self) -> Option<Duration> {
        if self.last.is_some_and(|t| t.elapsed() > 2 * CAP) {
            self.next = FIRST;
        }
        self.last = Some(Instant::now());
        let d = self.next;
        self.next = (self.next * 2).min(CAP);
        Some(d)
    }
}

impl kube::runtime::utils::Backoff for QuickBackoff {
    fn reset(&mut self) {
        self.next = FIRST;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::runtime::reflector::{self, ObjectRef};
    use kube::runtime::utils::Backoff;

    fn cm(name: &str, rv: &str) -> ConfigMap {
        let mut c = ConfigMap::default();
        c.metadata.name = Some(name.into());
        c.metadata.namespace = Some("n".into());
        c.metadata.resource_version = Some(rv.into());
        c
    }

    #[tokio::test]
    async fn a_relist_triggers_every_object_once_the_cache_holds_it() {
        use watcher::Event::*;
        let (reader, writer) = reflector::store::<ConfigMap>();
        let events = vec![
            Ok(Init),
            Ok(InitApply(cm("a", "1"))),
            Ok(InitDone),
            Ok(Apply(cm("a", "2"))),
            Err(watcher::Error::NoResourceVersion),
            // A relist after an outage: `b` was created and `a` changed meanwhile.
            Ok(Init),
            Ok(InitApply(cm("a", "3"))),
            Ok(InitApply(cm("b", "4"))),
            Ok(InitDone),
        ];
        let mut seen = Vec::new();
        let mut out = std::pin::pin!(cache_events(stream::iter(events), writer, |_| {}));
        while let Some(o) = out.next().await {
            let o = o.unwrap();
            // Every trigger finds its object, in the version it was triggered for, in the cache.
            let cached = reader.get(&ObjectRef::from_obj(&o)).expect("triggered before cached");
            assert_eq!(cached.metadata.resource_version, o.metadata.resource_version);
            seen.push(format!("{}@{}", o.metadata.name.unwrap(), o.metadata.resource_version.unwrap()));
        }
        seen[2..].sort();
        assert_eq!(seen, ["a@1", "a@2", "a@3", "b@4"], "each list complete, the errors dropped");
    }

    #[tokio::test]
    async fn a_deleted_object_leaves_the_cache_and_is_not_triggered_by_the_relist() {
        use watcher::Event::*;
        let (reader, writer) = reflector::store::<ConfigMap>();
        let events = vec![
            Ok(Init),
            Ok(InitApply(cm("a", "1"))),
            Ok(InitApply(cm("gone", "1"))),
            Ok(InitDone),
            Ok(Init),
            Ok(InitApply(cm("a", "1"))),
            Ok(InitDone),
        ];
        let out: Vec<_> = cache_events(stream::iter(events), writer, |_| {}).collect().await;
        assert_eq!(out.len(), 3);
        assert!(reader.get(&ObjectRef::new("gone").within("n")).is_none());
        assert_eq!(reader.state().len(), 1);
    }

    #[tokio::test]
    async fn a_delete_event_reaches_on_delete_and_triggers_nothing() {
        use watcher::Event::*;
        let (reader, writer) = reflector::store::<ConfigMap>();
        let deleted = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let d = deleted.clone();
        let events = vec![
            Ok(Init),
            Ok(InitApply(cm("a", "1"))),
            Ok(InitApply(cm("b", "1"))),
            Ok(InitDone),
            Ok(Delete(cm("b", "2"))),
        ];
        let on_delete = move |o: &ConfigMap| d.lock().unwrap().push(o.metadata.name.clone().unwrap());
        let out: Vec<_> = cache_events(stream::iter(events), writer, on_delete).collect().await;
        assert_eq!(out.len(), 2, "only the list triggers");
        assert_eq!(*deleted.lock().unwrap(), ["b"]);
        assert!(reader.get(&ObjectRef::new("b").within("n")).is_none());
    }

    #[test]
    fn the_backoff_is_short_capped_and_resets() {
        let mut b = QuickBackoff::default();
        let first: Vec<Duration> = (&mut b).take(8).collect();
        assert_eq!(first[0], FIRST);
        assert!(first.windows(2).all(|w| w[1] >= w[0]), "{first:?}");
        assert_eq!(*first.last().unwrap(), CAP, "capped: {first:?}");
        b.reset();
        assert_eq!(b.next(), Some(FIRST));
    }
}
