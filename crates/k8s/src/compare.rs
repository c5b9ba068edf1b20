//! `blis compare --namespace`: the candidates of a namespace read from their scenarios' status, so
//! predictions made in the cluster compare exactly like ones simulated from files.

use kube::api::ListParams;
use kube::{Api, Client};

use crate::api::conditions::{status_of, SLO_MET};
use crate::api::SimulationScenario;
use blis_report::compare::Candidate;

/// Each SimulationScenario of `namespace` as a candidate: its status predictions and `SLOMet`,
/// sorted by name.
pub async fn candidates(client: Client, namespace: &str) -> Result<Vec<Candidate>, kube::Error> {
    let api: Api<SimulationScenario> = Api::namespaced(client, namespace);
    let list = api.list(&ListParams::default()).await?;
    let mut out: Vec<Candidate> = list
        .items
        .into_iter()
        .map(|s| {
            let status = s.status.unwrap_or_default();
            Candidate {
                name: s.metadata.name.unwrap_or_default(),
                predictions: status.predictions,
                slo_met: status_of(&status.conditions, SLO_MET).and_then(|m| match m {
                    "True" => Some(true),
                    "False" => Some(false),
                    _ => None,
                }),
            }
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}
