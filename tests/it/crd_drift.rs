//! `crds/blis.yaml` must be exactly what `blis crd` prints (regenerate with
//! `cargo run -- crd > crds/blis.yaml`).

use std::process::Command;

#[test]
fn committed_crds_match_the_code() {
    let out = Command::new(env!("CARGO_BIN_EXE_blis")).arg("crd").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let generated = String::from_utf8(out.stdout).unwrap();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("crds/blis.yaml");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        generated == committed,
        "crds/blis.yaml is out of date: run `cargo run -- crd > crds/blis.yaml` and commit it"
    );
}
