//! Rendering with the tools operators use: `kubectl kustomize` for Kustomize sources and `helm
//! template` for a chart that is present locally. The binaries come from `BLIS_KUBECTL` /
//! `BLIS_HELM` or the PATH; when one is missing the error says how to render by hand. Only the CLI's
//! file loading calls these (the simulator core never runs a process).

use std::path::{Path, PathBuf};
use std::process::Command;

use blis_sim::error::InvalidInput;

/// The binary `name`, from the environment variable `var` or the PATH.
fn tool(var: &str, name: &str) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(var).map(PathBuf::from).filter(|p| p.is_file()) {
        return Some(p);
    }
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).map(|d| d.join(name)).find(|p| p.is_file()))
        .unwrap_or(None)
}

/// Runs `bin args`, returning stdout, or an error naming `what` with the tool's first error line.
fn run(bin: &Path, args: &[String], what: &str, by_hand: &str) -> Result<String, InvalidInput> {
    let out = Command::new(bin)
        .args(args)
        .output()
        .map_err(|e| InvalidInput::new(what, format!("cannot run {}: {e}", bin.display()), by_hand))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let line = err.lines().find(|l| !l.trim().is_empty()).unwrap_or("").trim().to_string();
        return Err(InvalidInput::new(
            what,
            format!("{} {} failed: {line}", bin.display(), args.first().map(String::as_str).unwrap_or("")),
            by_hand,
        ));
    }
    String::from_utf8(out.stdout)
        .map_err(|e| InvalidInput::new(what, format!("rendered output is not UTF-8: {e}"), by_hand))
}

/// `kubectl kustomize DIR`.
pub fn kustomize(dir: &Path) -> Result<String, InvalidInput> {
    let what = format!("{} (kustomization)", dir.display());
    let by_hand = format!(
        "install kubectl (or set BLIS_KUBECTL to it), or render by hand: kubectl kustomize {} > rendered.yaml, and import that file instead",
        dir.display()
    );
    let Some(bin) = tool("BLIS_KUBECTL", "kubectl") else {
        return Err(InvalidInput::new(
            what,
            "is a Kustomize source that needs rendering, and kubectl is not installed",
            by_hand,
        ));
    };
    run(&bin, &["kustomize".to_string(), dir.display().to_string()], &what, &by_hand)
}

/// `helm template RELEASE CHART_DIR --namespace NS -f VALUES... --set K=V...`.
pub fn helm_template(
    release: &str,
    chart: &Path,
    namespace: &str,
    values: &[PathBuf],
    set: &[(String, String)],
) -> Result<String, InvalidInput> {
    let what = format!("{} (Helm chart)", chart.display());
    let mut args = vec![
        "template".to_string(),
        release.to_string(),
        chart.display().to_string(),
        "--namespace".to_string(),
        namespace.to_string(),
    ];
    for v in values {
        args.extend(["-f".to_string(), v.display().to_string()]);
    }
    for (k, v) in set {
        args.extend(["--set".to_string(), format!("{k}={v}")]);
    }
    let by_hand = format!(
        "install helm (or set BLIS_HELM to it), or render by hand: helm {} > rendered.yaml, and import that file instead",
        args.join(" ")
    );
    let Some(bin) = tool("BLIS_HELM", "helm") else {
        return Err(InvalidInput::new(
            what,
            "is a local Helm chart that needs rendering, and helm is not installed",
            by_hand,
        ));
    };
    run(&bin, &args, &what, &by_hand)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_tool_says_how_to_render_by_hand() {
        // A PATH without the tools and no override.
        let tmp = tempfile::Builder::new().prefix("blis-render-none-").tempdir().unwrap();
        let dir = tmp.path();
        let bin = dir.join("kubectl");
        std::fs::write(&bin, "#!/bin/sh\necho 'error: boom' >&2\nexit 1\n").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let e =
            run(&bin, &["kustomize".into(), "x".into()], "x (kustomization)", "render by hand").unwrap_err();
        assert!(e.problem.contains("failed: error: boom"), "{e}");
        assert_eq!(e.fix, "render by hand");
        assert!(tool("BLIS_NO_SUCH_VAR", "no-such-tool-anywhere").is_none());
    }
}
