//! The `helm` the chart tests run: `$BLIS_HELM`, else the one `hack/helm.sh` builds (from Go modules,
//! cached in `.cache/helm`) and prints.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Path of the helm binary; fails the test when it cannot be provided.
pub fn helm_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("BLIS_HELM") {
        return p.into();
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("hack/helm.sh");
    let out = Command::new(script).output().expect("run hack/helm.sh");
    assert!(
        out.status.success(),
        "hack/helm.sh could not provide helm (it builds it with Go): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}
