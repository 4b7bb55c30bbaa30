//! The Krew plugin manifest: rendered from the template `krew-manifest.yaml` (placeholders
//! `{{VERSION}}` and `{{SHA256:os/arch}}`) for the archives in a dist directory, then checked
//! with the rules Krew's validation applies (krew `pkg/index/validation`): apiVersion and kind,
//! a valid plugin name, a `v`-prefixed semantic version, a short description, platforms with a
//! matchLabels/matchExpressions selector, an https uri, a 64-hex sha256 and a bin (`.exe` on
//! Windows), no two platforms for the same os/arch.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::dist::{archive_name, bin_name, ARCHES, OSES};
use crate::{repo_root, sha256_hex, Flags, VERSION};

pub const API_VERSION: &str = "krew.googlecontainertools.github.com/v1alpha2";
pub const DEFAULT_BASE_URL: &str = "https://github.com/netdebug/kubectl-netdebug/releases/download";

pub fn run(flags: &Flags) -> Result<()> {
    let dist = flags
        .path("dist")
        .unwrap_or_else(|| repo_root().join("dist"));
    let tag = flags
        .get("tag")
        .map(str::to_string)
        .unwrap_or_else(|| format!("v{VERSION}"));
    let base = flags.get("base-url").unwrap_or(DEFAULT_BASE_URL);
    let template = std::fs::read_to_string(repo_root().join("krew-manifest.yaml"))
        .context("cannot read krew-manifest.yaml")?;
    // A local build has only the host's archive: --available-only renders the platforms present
    // (as JSON, which is YAML too) instead of refusing.
    let (rendered, manifest) = if flags.has("available-only") {
        let m = render_available(&template, &tag, base, &dist)?;
        (serde_json::to_string_pretty(&m)? + "\n", m)
    } else {
        let text = render(&template, &tag, base, &dist)?;
        let m = parse(&text)?;
        (text, m)
    };
    validate(&manifest)?;
    check_archives(&manifest, &dist)?;
    let out = flags
        .path("out")
        .unwrap_or_else(|| dist.join("netdebug.yaml"));
    std::fs::write(&out, rendered)?;
    println!("{}", out.display());
    Ok(())
}

/// Fill the template. Every platform's archive must be in `dist`.
pub fn render(template: &str, tag: &str, base_url: &str, dist: &Path) -> Result<String> {
    let out = fill(template, tag, base_url, dist, true)?;
    if let Some(pos) = out.find("{{") {
        bail!("unfilled placeholder in the manifest at byte {pos}");
    }
    Ok(out)
}

/// Fill the template for the archives that exist and drop the platforms that have none (a
/// local build has only the host's archive).
pub fn render_available(template: &str, tag: &str, base_url: &str, dist: &Path) -> Result<Value> {
    let mut m = parse(&fill(template, tag, base_url, dist, false)?)?;
    if let Some(platforms) = m["spec"]["platforms"].as_array_mut() {
        platforms.retain(|p| !p["sha256"].as_str().unwrap_or("").contains("{{"));
    }
    Ok(m)
}

fn fill(template: &str, tag: &str, base_url: &str, dist: &Path, all: bool) -> Result<String> {
    let mut out = template
        .replace("{{TAG}}", tag)
        .replace("{{BASE_URL}}", base_url);
    for os in OSES {
        for arch in ARCHES {
            let key = format!("{{{{SHA256:{os}/{arch}}}}}");
            if !out.contains(&key) {
                continue;
            }
            let archive = dist.join(archive_name(os, arch));
            match std::fs::read(&archive) {
                Ok(bytes) => out = out.replace(&key, &sha256_hex(&bytes)),
                Err(_) if !all => {}
                Err(e) => bail!(
                    "no archive for {os}/{arch}: {}: {e} (run `cargo xtask dist`)",
                    archive.display()
                ),
            }
        }
    }
    Ok(out)
}

pub fn parse(yaml: &str) -> Result<Value> {
    serde_saphyr::from_str(yaml).context("krew manifest is not valid YAML")
}

/// Krew's own validation rules, as errors naming the field at fault.
pub fn validate(m: &Value) -> Result<()> {
    let s = |path: &[&str]| -> Option<&str> {
        let mut v = m;
        for p in path {
            v = v.get(*p)?;
        }
        v.as_str()
    };
    if s(&["apiVersion"]) != Some(API_VERSION) {
        bail!("apiVersion must be {API_VERSION}");
    }
    if s(&["kind"]) != Some("Plugin") {
        bail!("kind must be Plugin");
    }
    let name = s(&["metadata", "name"]).context("metadata.name is missing")?;
    let name_ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with("kubectl-");
    if !name_ok {
        bail!("metadata.name `{name}` is not a valid plugin name");
    }
    let version = s(&["spec", "version"]).context("spec.version is missing")?;
    if !is_semver_with_v(version) {
        bail!("spec.version `{version}` is not a v-prefixed semantic version");
    }
    let short = s(&["spec", "shortDescription"]).unwrap_or("");
    if short.is_empty() || short.len() > 50 {
        bail!("spec.shortDescription must be 1 to 50 characters");
    }
    for field in ["homepage", "description", "caveats"] {
        if s(&["spec", field]).is_none_or(str::is_empty) {
            bail!("spec.{field} is missing");
        }
    }
    if !s(&["spec", "homepage"])
        .unwrap_or("")
        .starts_with("https://")
    {
        bail!("spec.homepage must be an https URL");
    }
    let platforms = m["spec"]["platforms"]
        .as_array()
        .filter(|p| !p.is_empty())
        .context("spec.platforms must list at least one platform")?;
    let mut seen = Vec::new();
    for (i, p) in platforms.iter().enumerate() {
        let labels = p["selector"]["matchLabels"]
            .as_object()
            .with_context(|| format!("platforms[{i}].selector.matchLabels is missing"))?;
        let os = labels.get("os").and_then(Value::as_str).unwrap_or("");
        let arch = labels.get("arch").and_then(Value::as_str).unwrap_or("");
        if !OSES.contains(&os) || !ARCHES.contains(&arch) {
            bail!("platforms[{i}] selects os `{os}` arch `{arch}`, not a known platform");
        }
        if seen.contains(&(os, arch)) {
            bail!("platforms[{i}]: {os}/{arch} is listed twice");
        }
        seen.push((os, arch));
        let uri = p["uri"].as_str().unwrap_or("");
        if !uri.starts_with("https://") {
            bail!("platforms[{i}].uri `{uri}` must be https");
        }
        let sha = p["sha256"].as_str().unwrap_or("");
        if sha.len() != 64
            || !sha
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        {
            bail!("platforms[{i}].sha256 `{sha}` is not 64 lower-case hex digits");
        }
        let bin = p["bin"].as_str().unwrap_or("");
        if bin.is_empty() || bin.contains('/') || bin.contains('\\') {
            bail!("platforms[{i}].bin `{bin}` must be a file name");
        }
        if os == "windows" && !bin.ends_with(".exe") {
            bail!("platforms[{i}].bin `{bin}` must end in .exe on windows");
        }
    }
    Ok(())
}

/// Every archive the manifest names is in `dist`, holds `bin`, and has the stated sha256.
pub fn check_archives(m: &Value, dist: &Path) -> Result<()> {
    for p in m["spec"]["platforms"].as_array().into_iter().flatten() {
        let uri = p["uri"].as_str().unwrap_or("");
        let file = uri.rsplit('/').next().unwrap_or("");
        let path: PathBuf = dist.join(file);
        let bytes = std::fs::read(&path)
            .with_context(|| format!("archive {} for {uri} is missing", path.display()))?;
        let sha = p["sha256"].as_str().unwrap_or("");
        if sha256_hex(&bytes) != sha {
            bail!("{file}: sha256 differs from the manifest");
        }
        let bin = p["bin"].as_str().unwrap_or("");
        let names = crate::dist::list(&path)?;
        if !names.iter().any(|n| n == bin) {
            bail!("{file} does not contain `{bin}` (has {names:?})");
        }
        let os = p["selector"]["matchLabels"]["os"].as_str().unwrap_or("");
        if bin != bin_name(os) {
            bail!("{file}: bin `{bin}` is not the client binary for {os}");
        }
    }
    Ok(())
}

fn is_semver_with_v(v: &str) -> bool {
    let Some(rest) = v.strip_prefix('v') else {
        return false;
    };
    let core = rest.split(['-', '+']).next().unwrap_or("");
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.bytes().all(|b| b.is_ascii_digit())
                && (p.len() == 1 || !p.starts_with('0'))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn semver() {
        assert!(is_semver_with_v("v0.1.0"));
        assert!(is_semver_with_v("v1.2.3-rc.1"));
        assert!(!is_semver_with_v("0.1.0"));
        assert!(!is_semver_with_v("v1.2"));
        assert!(!is_semver_with_v("v01.2.3"));
    }
}
