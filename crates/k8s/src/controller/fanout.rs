//! Fanning a sweep out to a Kubernetes Indexed Job: one pod per shard runs `blis sweep-shard`, which
//! simulates every n-th candidate and writes its [`ShardDoc`] into a ConfigMap owned by the sweep;
//! the controller merges the shards into the same ranking a single run gives, then deletes the Job
//! and the ConfigMaps. Pure steps (decide, build, collect) are apart from the few API calls.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{DeleteParams, ListParams};
use kube::{Api, Client, Resource, ResourceExt};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::api::{FanOutMode, SimulationSweep, SimulationSweepSpec};
use blis_plan::sweep::shard::ShardDoc;
use blis_sim::error::InvalidInput;

/// Label on the shard ConfigMaps (and the Job) naming the sweep's uid.
pub const SWEEP_UID_LABEL: &str = "twin.blis.dev/sweep-uid";
/// Annotation on the Job: the [`blis_plan::sweep::shard::spec_hash`] of the spec it runs.
pub const SPEC_HASH_ANNOTATION: &str = "twin.blis.dev/spec-hash";
/// Key of the shard result in its ConfigMap.
pub const SHARD_KEY: &str = "shard.json";
/// Field manager of the shard workers' writes.
pub const WORKER_FIELD_MANAGER: &str = "blis-sweep-shard";
/// Most bytes of one shard result: the API server refuses objects over 1 MiB.
pub const MAX_SHARD_BYTES: usize = 900_000;
/// Most candidates one shard may hold, so its result fits a ConfigMap (a result is ~0.6 kB).
pub const MAX_CANDIDATES_PER_SHARD: usize = 1000;

/// The controller's fan-out settings (flags of `blis controller`).
#[derive(Debug, Clone)]
pub struct FanOutConfig {
    /// Image of the shard pods (the controller's own); without one, sweeps run in the controller.
    pub image: Option<String>,
    /// ServiceAccount of the shard pods, in the sweep's namespace.
    pub service_account: String,
    /// Sweeps of at least this many candidates fan out (mode `Auto`).
    pub threshold: usize,
    /// Shards when the sweep does not say.
    pub default_shards: u32,
}

impl Default for FanOutConfig {
    fn default() -> Self {
        Self { image: None, service_account: "blis-sweep-worker".into(), threshold: 2000, default_shards: 4 }
    }
}

/// How many shards a sweep of `candidates` runs as (`None`: inside the controller). Fails, naming
/// the field, when fan-out is forced without an image or the shards would not fit their ConfigMaps.
pub fn shards_for(
    spec: &SimulationSweepSpec,
    candidates: usize,
    cfg: &FanOutConfig,
) -> Result<Option<u32>, InvalidInput> {
    let fan = spec.fan_out.clone().unwrap_or_default();
    let wanted = match fan.mode.unwrap_or_default() {
        FanOutMode::Never => false,
        FanOutMode::Auto => cfg.image.is_some() && candidates >= cfg.threshold.max(1),
        FanOutMode::Always => {
            if cfg.image.is_none() {
                return Err(InvalidInput::new(
                    "spec.fanOut.mode",
                    "is Always but the controller has no sweep image to run shards with",
                    "start the controller with --sweep-image (the Helm chart sets it), or set mode Auto",
                ));
            }
            true
        }
    };
    if !wanted {
        return Ok(None);
    }
    let shards =
        fan.shards.unwrap_or(cfg.default_shards).clamp(1, u32::try_from(candidates.max(1)).unwrap_or(1));
    let per_shard = candidates.div_ceil(shards as usize);
    if per_shard > MAX_CANDIDATES_PER_SHARD {
        let least = candidates.div_ceil(MAX_CANDIDATES_PER_SHARD);
        return Err(InvalidInput::new(
            "spec.fanOut.shards",
            format!(
                "{shards} shards would hold {per_shard} candidates each, more than a shard result can carry"
            ),
            format!("use at least {least} shards (at most {MAX_CANDIDATES_PER_SHARD} candidates per shard)"),
        ));
    }
    Ok(Some(shards))
}

/// A child name `<sweep>-<suffix>` of at most 63 characters (a Job name is also a pod label value);
/// long sweep names are cut and made unique with a hash.
pub fn child_name(sweep: &str, suffix: &str) -> String {
    let full = format!("{sweep}-{suffix}");
    if full.len() <= 63 {
        return full;
    }
    let digest: String =
        Sha256::digest(sweep.as_bytes()).iter().take(3).map(|b| format!("{b:02x}")).collect();
    let keep = 63 - suffix.len() - digest.len() - 2;
    let cut = sweep[..keep].trim_end_matches(['-', '.']);
    format!("{cut}-{digest}-{suffix}")
}

/// Name of the sweep's Job.
pub fn job_name(sweep: &str) -> String {
    child_name(sweep, "shards")
}

/// Name of the ConfigMap holding shard `index`'s result.
pub fn shard_config_map_name(sweep: &str, index: u32) -> String {
    format!("{}-{index}", job_name(sweep))
}

/// Owner reference to the sweep, so garbage collection deletes the children with it. No
/// `blockOwnerDeletion`: that would need update rights on the sweep's finalizers.
pub fn owner_reference(sweep: &SimulationSweep) -> OwnerReference {
    OwnerReference {
        api_version: SimulationSweep::api_version(&()).into_owned(),
        kind: SimulationSweep::kind(&()).into_owned(),
        name: sweep.name_any(),
        uid: sweep.uid().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: None,
    }
}

/// The Indexed Job running `shards` shards of `sweep` (spec hash `spec_hash`): completions and
/// parallelism equal the shard count; each pod finds its shard in `JOB_COMPLETION_INDEX`.
pub fn build_job(sweep: &SimulationSweep, shards: u32, spec_hash: &str, cfg: &FanOutConfig) -> Job {
    let name = sweep.name_any();
    let labels = json!({
        "app.kubernetes.io/name": "blis",
        "app.kubernetes.io/component": "sweep-shard",
        "app.kubernetes.io/managed-by": "blis-controller",
        SWEEP_UID_LABEL: sweep.uid().unwrap_or_default(),
    });
    let job = json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": job_name(&name),
            "namespace": sweep.namespace(),
            "labels": labels,
            "annotations": { SPEC_HASH_ANNOTATION: spec_hash },
            "ownerReferences": [owner_reference(sweep)],
        },
        "spec": {
            "completionMode": "Indexed",
            "completions": shards,
            "parallelism": shards,
            "backoffLimit": 2 * shards,
            "ttlSecondsAfterFinished": 86400,
            "template": {
                "metadata": { "labels": labels },
                "spec": {
                    "restartPolicy": "Never",
                    "serviceAccountName": cfg.service_account,
                    "securityContext": {
                        "runAsNonRoot": true, "runAsUser": 65532, "runAsGroup": 65532,
                        "seccompProfile": { "type": "RuntimeDefault" },
                    },
                    "containers": [{
                        "name": "shard",
                        "image": cfg.image.clone().unwrap_or_default(),
                        "args": [
                            "sweep-shard", "--namespace", sweep.namespace().unwrap_or_default(),
                            "--sweep", name, "--shards", shards.to_string(), "--spec-hash", spec_hash,
                        ],
                        "resources": {
                            "requests": { "cpu": "1", "memory": "256Mi" },
                            "limits": { "memory": "2Gi" },
                        },
                        "securityContext": {
                            "allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
                            "runAsNonRoot": true, "capabilities": { "drop": ["ALL"] },
                        },
                    }],
                },
            },
        },
    });
    serde_json::from_value(job).expect("the Job literal matches the batch/v1 schema")
}

/// The spec hash a Job was made for.
pub fn job_spec_hash(job: &Job) -> Option<&str> {
    job.metadata.annotations.as_ref()?.get(SPEC_HASH_ANNOTATION).map(String::as_str)
}

/// Why a Job failed, when it did (its `Failed` condition).
pub fn job_failure(job: &Job) -> Option<String> {
    let conds = job.status.as_ref()?.conditions.as_ref()?;
    conds.iter().find(|c| c.type_ == "Failed" && c.status == "True").map(|c| {
        format!(
            "{}: {}",
            c.reason.as_deref().unwrap_or("Failed"),
            c.message.as_deref().unwrap_or("no message")
        )
    })
}

/// The shard results among `config_maps` that belong to this spec and shard count, one per shard
/// (ordered by shard); others (an older spec, unreadable data) are ignored.
pub fn collect(config_maps: &[ConfigMap], spec_hash: &str, shards: u32, total: usize) -> Vec<ShardDoc> {
    let mut by_shard = BTreeMap::new();
    for cm in config_maps {
        let Some(text) = cm.data.as_ref().and_then(|d| d.get(SHARD_KEY)) else { continue };
        let Ok(doc) = serde_json::from_str::<ShardDoc>(text) else { continue };
        if doc.spec_hash == spec_hash && doc.shards == shards && doc.candidates == total && doc.shard < shards
        {
            by_shard.insert(doc.shard, doc);
        }
    }
    by_shard.into_values().collect()
}

/// The ConfigMap a shard pod writes: its result, labelled with and owned by the sweep. Fails when the
/// result is too large for one object.
pub fn shard_config_map(sweep: &SimulationSweep, doc: &ShardDoc) -> Result<ConfigMap, InvalidInput> {
    let text =
        serde_json::to_string(doc).map_err(|e| InvalidInput::new("shard result", e.to_string(), ""))?;
    if text.len() > MAX_SHARD_BYTES {
        return Err(InvalidInput::new(
            "spec.fanOut.shards",
            format!(
                "shard {} of {} holds {} bytes of results, over {MAX_SHARD_BYTES}",
                doc.shard,
                doc.shards,
                text.len()
            ),
            "raise spec.fanOut.shards so each shard holds fewer candidates",
        ));
    }
    let cm = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": shard_config_map_name(&sweep.name_any(), doc.shard),
            "namespace": sweep.namespace(),
            "labels": {
                "app.kubernetes.io/name": "blis",
                "app.kubernetes.io/component": "sweep-shard",
                SWEEP_UID_LABEL: sweep.uid().unwrap_or_default(),
            },
            "ownerReferences": [owner_reference(sweep)],
        },
        "data": { SHARD_KEY: text },
    });
    Ok(serde_json::from_value(cm).expect("the ConfigMap literal matches the v1 schema"))
}

/// Selector of a sweep's shard ConfigMaps.
pub fn shard_selector(uid: &str) -> ListParams {
    ListParams::default().labels(&format!("{SWEEP_UID_LABEL}={uid}"))
}

/// Deletes the sweep's Job (and, by propagation, its pods) and shard ConfigMaps; absent ones are fine.
pub async fn clean_up(client: &Client, ns: &str, sweep: &str, uid: &str) -> Result<(), kube::Error> {
    let jobs = Api::<Job>::namespaced(client.clone(), ns);
    if let Some(job) = jobs.get_opt(&job_name(sweep)).await? {
        if job.labels().get(SWEEP_UID_LABEL).map(String::as_str) == Some(uid) {
            ignore_not_found(jobs.delete(&job_name(sweep), &DeleteParams::background()).await.map(|_| ()))?;
        }
    }
    let cms = Api::<ConfigMap>::namespaced(client.clone(), ns);
    for cm in cms.list(&shard_selector(uid)).await?.items {
        ignore_not_found(cms.delete(&cm.name_any(), &DeleteParams::default()).await.map(|_| ()))?;
    }
    Ok(())
}

fn ignore_not_found(r: Result<(), kube::Error>) -> Result<(), kube::Error> {
    match r {
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::SweepFanOut;
    use blis_plan::sweep::eval::CandidateResult;

    fn spec(mode: Option<FanOutMode>, shards: Option<u32>) -> SimulationSweepSpec {
        let (_, mut s) = blis_plan::sweep::parse_sweep(include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../examples/sweeps/sweep-replicas.yaml"
        )))
        .unwrap();
        s.fan_out = Some(SweepFanOut { mode, shards });
        SimulationSweepSpec(s)
    }

    fn sweep_obj() -> SimulationSweep {
        let mut o = SimulationSweep::new("a-sweep", spec(None, None));
        o.metadata.namespace = Some("twin".into());
        o.metadata.uid = Some("uid-1".into());
        o
    }

    fn cfg(image: Option<&str>) -> FanOutConfig {
        FanOutConfig { image: image.map(String::from), threshold: 100, ..Default::default() }
    }

    #[test]
    fn fan_out_is_decided_by_mode_threshold_and_image() {
        let img = cfg(Some("blis:1"));
        assert_eq!(shards_for(&spec(None, None), 99, &img).unwrap(), None, "below the threshold");
        assert_eq!(shards_for(&spec(None, None), 100, &img).unwrap(), Some(4), "controller default");
        assert_eq!(shards_for(&spec(None, None), 100, &cfg(None)).unwrap(), None, "no image: in-process");
        assert_eq!(shards_for(&spec(Some(FanOutMode::Never), None), 5000, &img).unwrap(), None);
        assert_eq!(shards_for(&spec(Some(FanOutMode::Always), Some(8)), 12, &img).unwrap(), Some(8));
        assert_eq!(
            shards_for(&spec(Some(FanOutMode::Always), Some(8)), 3, &img).unwrap(),
            Some(3),
            "≤ candidates"
        );
        let e = shards_for(&spec(Some(FanOutMode::Always), None), 12, &cfg(None)).unwrap_err();
        assert_eq!(e.field, "spec.fanOut.mode");
        assert!(e.fix.contains("--sweep-image"), "{e}");
        let e = shards_for(&spec(Some(FanOutMode::Always), Some(2)), 5000, &img).unwrap_err();
        assert_eq!(e.field, "spec.fanOut.shards");
        assert!(e.fix.contains("at least 5 shards"), "{e}");
    }

    #[test]
    fn child_names_fit_a_label_value_and_stay_unique() {
        assert_eq!(job_name("s"), "s-shards");
        assert_eq!(shard_config_map_name("s", 3), "s-shards-3");
        let (a, b) = ("a".repeat(100), format!("{}b", "a".repeat(99)));
        for n in [&a, &b] {
            assert!(job_name(n).len() <= 63, "{}", job_name(n));
            assert!(job_name(n).ends_with("-shards"));
        }
        assert_ne!(job_name(&a), job_name(&b));
        let dotted = format!("{}.{}", "x".repeat(47), "y".repeat(40));
        assert!(!job_name(&dotted).contains(".-"), "{}", job_name(&dotted));
    }

    #[test]
    fn job_is_indexed_owned_and_runs_the_shard_command() {
        let o = sweep_obj();
        let job = build_job(&o, 4, "abc", &cfg(Some("blis:1")));
        let s = job.spec.as_ref().unwrap();
        assert_eq!(s.completion_mode.as_deref(), Some("Indexed"));
        assert_eq!((s.completions, s.parallelism), (Some(4), Some(4)));
        assert_eq!(job_spec_hash(&job), Some("abc"));
        let owner = &job.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str(), owner.controller),
            ("SimulationSweep", "uid-1", Some(true))
        );
        let pod = s.template.spec.as_ref().unwrap();
        assert_eq!(pod.service_account_name.as_deref(), Some("blis-sweep-worker"));
        let c = &pod.containers[0];
        assert_eq!(c.image.as_deref(), Some("blis:1"));
        let args = c.args.as_ref().unwrap().join(" ");
        assert_eq!(args, "sweep-shard --namespace twin --sweep a-sweep --shards 4 --spec-hash abc");
        assert_eq!(job.labels().get(SWEEP_UID_LABEL).map(String::as_str), Some("uid-1"));
        assert_eq!(job_failure(&job), None);
    }

    #[test]
    fn collect_keeps_one_matching_result_per_shard() {
        let o = sweep_obj();
        let doc = |shard: u32, hash: &str| ShardDoc {
            sweep: "a-sweep".into(),
            spec_hash: hash.into(),
            shard,
            shards: 2,
            candidates: 2,
            results: vec![CandidateResult {
                index: shard as usize,
                name: format!("c{shard}"),
                settings: Default::default(),
                feasible: true,
                failed: vec![],
                figures: None,
                objective_ci95: None,
                max_rate: None,
            }],
        };
        let cm = |d: &ShardDoc| shard_config_map(&o, d).unwrap();
        let mut junk = cm(&doc(0, "h"));
        junk.data.as_mut().unwrap().insert(SHARD_KEY.into(), "not json".into());
        let found = collect(&[cm(&doc(1, "h")), cm(&doc(0, "old")), junk, cm(&doc(1, "h"))], "h", 2, 2);
        assert_eq!(found.iter().map(|d| d.shard).collect::<Vec<_>>(), [1]);
        let both = collect(&[cm(&doc(1, "h")), cm(&doc(0, "h"))], "h", 2, 2);
        assert_eq!(both.iter().map(|d| d.shard).collect::<Vec<_>>(), [0, 1]);
        assert!(collect(&[cm(&doc(0, "h"))], "h", 3, 2).is_empty(), "another shard count");
        let c = cm(&doc(1, "h"));
        assert_eq!(c.metadata.name.as_deref(), Some("a-sweep-shards-1"));
        assert_eq!(c.metadata.owner_references.as_ref().unwrap()[0].name, "a-sweep");
    }

    #[test]
    fn an_oversized_shard_result_names_the_field_to_raise() {
        let o = sweep_obj();
        let big = CandidateResult {
            index: 0,
            name: "x".repeat(MAX_SHARD_BYTES),
            settings: Default::default(),
            feasible: false,
            failed: vec![],
            figures: None,
            objective_ci95: None,
            max_rate: None,
        };
        let doc = ShardDoc {
            sweep: "a-sweep".into(),
            spec_hash: "h".into(),
            shard: 0,
            shards: 1,
            candidates: 1,
            results: vec![big],
        };
        assert_eq!(shard_config_map(&o, &doc).unwrap_err().field, "spec.fanOut.shards");
    }
}
