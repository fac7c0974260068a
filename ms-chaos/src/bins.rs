//! Where the service binaries are, and building them once per test process.
//!
//! `cargo nextest run --workspace` builds a package's binaries only when that package has
//! integration tests (ms-router has none), so the suite asks cargo for them itself when
//! one is missing or older than the sources it is built from (ms-common, its own crate,
//! the workspace manifests). The build uses the flags of the workspace test build
//! (`--workspace --tests --bins`), so after `scripts/test.sh`'s build it only links the
//! missing binaries; cargo's own lock serialises concurrent test processes.
//! `CHAOS_SKIP_BUILD=1` never builds (the binaries must then exist).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The binaries the suite runs.
pub const BINARIES: [&str; 5] = ["ms-user", "ms-stuff", "ms-order", "ms-payment", "ms-router"];

/// The workspace root (the parent of this crate).
pub fn workspace_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent().unwrap_or(here).to_path_buf()
}

/// `target/<profile>`: the directory the running test executable was built into
/// (`…/target/debug/deps/chaos-…` → `…/target/debug`).
pub fn profile_dir() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let mut dir = exe.parent();
    while let Some(d) = dir {
        if d.file_name().is_some_and(|n| n == "deps")
            && let Some(p) = d.parent()
        {
            return Ok(p.to_path_buf());
        }
        dir = d.parent();
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    Ok(target.join("debug"))
}

/// The path of one binary.
pub fn binary(name: &str) -> anyhow::Result<PathBuf> {
    Ok(profile_dir()?.join(name))
}

static BUILT: OnceLock<Result<(), String>> = OnceLock::new();

/// Builds every service binary with the same profile and feature set as the tests
/// (`--workspace --tests --bins`, so nothing is rebuilt that the test build made).
pub fn ensure_built() -> anyhow::Result<()> {
    let res = BUILT.get_or_init(|| build().map_err(|e| format!("{e:#}")));
    match res {
        Ok(()) => Ok(()),
        Err(e) => anyhow::bail!("building the service binaries failed: {e}"),
    }
}

/// Newest modification time of any file under `path` (a file or a directory).
fn newest(path: &Path) -> Option<std::time::SystemTime> {
    let meta = std::fs::metadata(path).ok()?;
    if meta.is_file() {
        return meta.modified().ok();
    }
    std::fs::read_dir(path)
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| newest(&e.path()))
        .max()
}

/// True when every binary exists and is newer than everything it is built from.
fn fresh(profile_dir: &Path) -> bool {
    let root = workspace_root();
    let shared = [
        root.join("Cargo.toml"),
        root.join("Cargo.lock"),
        root.join("ms-common/src"),
        root.join("ms-common/Cargo.toml"),
    ];
    BINARIES.iter().all(|name| {
        let Some(built) = std::fs::metadata(profile_dir.join(name))
            .and_then(|m| m.modified())
            .ok()
        else {
            return false;
        };
        let own = [
            root.join(name).join("src"),
            root.join(name).join("Cargo.toml"),
        ];
        shared
            .iter()
            .chain(own.iter())
            .filter_map(|p| newest(p))
            .all(|t| t <= built)
    })
}

fn build() -> anyhow::Result<()> {
    let profile_dir = profile_dir()?;
    if std::env::var_os("CHAOS_SKIP_BUILD").is_none() && !fresh(&profile_dir) {
        let target_dir = profile_dir
            .parent()
            .ok_or_else(|| anyhow::anyhow!("no target dir above {}", profile_dir.display()))?;
        let profile = profile_dir
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("debug");
        let profile = if profile == "debug" { "dev" } else { profile };
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let out = std::process::Command::new(cargo)
            .current_dir(workspace_root())
            .args(["build", "--workspace", "--tests", "--bins", "--quiet"])
            .arg("--profile")
            .arg(profile)
            .arg("--target-dir")
            .arg(target_dir)
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "cargo build failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for name in BINARIES {
        let p = profile_dir.join(name);
        anyhow::ensure!(p.exists(), "{} is missing", p.display());
    }
    Ok(())
}
