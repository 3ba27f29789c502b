//! Whole-image copies with skopeo, the way a real client moves images.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result, anyhow, ensure};
use reqwest::{Method, StatusCode};
use serde_json::json;

use super::Ctx;
use crate::ScenarioName;
use crate::data::{self, Image, OCI_MANIFEST, sha256_of, tar_size};
use crate::registry::Registry;
use crate::report::{Sample, Section};

const TAG: &str = "bench";
const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// Writes `image` as an OCI image layout directory tagged `TAG`.
fn write_layout(dir: &Path, image: &Image) -> Result<()> {
    let blobs = dir.join("blobs").join("sha256");
    std::fs::create_dir_all(&blobs).with_context(|| format!("creating {}", blobs.display()))?;
    let write_blob = |data: &[u8]| -> Result<()> {
        let digest = sha256_of(data);
        let hex = digest.trim_start_matches("sha256:");
        std::fs::write(blobs.join(hex), data).with_context(|| format!("writing blob {digest}"))
    };
    for blob in image.blobs() {
        write_blob(blob)?;
    }
    write_blob(&image.manifest)?;
    let index = json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": OCI_MANIFEST,
            "digest": image.manifest_digest,
            "size": image.manifest.len(),
            "annotations": { REF_NAME: TAG },
        }],
    });
    std::fs::write(dir.join("index.json"), index.to_string())?;
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#)?;
    Ok(())
}

/// Checks that a layout written by skopeo holds exactly our image.
fn verify_layout(dir: &Path, image: &Image) -> Result<()> {
    let index: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.join("index.json")).context("reading the copied index.json")?,
    )?;
    let manifests = index["manifests"]
        .as_array()
        .ok_or_else(|| anyhow!("copied index.json has no manifests"))?;
    let entry = manifests
        .iter()
        .find(|m| m["annotations"][REF_NAME] == TAG)
        .ok_or_else(|| anyhow!("copied index.json has no entry tagged {TAG}"))?;
    ensure!(
        entry["digest"] == image.manifest_digest.as_str(),
        "copied manifest digest {}, expected {}",
        entry["digest"],
        image.manifest_digest
    );
    for blob in image.blobs().chain(std::iter::once(&image.manifest)) {
        let digest = sha256_of(blob);
        let path = dir
            .join("blobs")
            .join("sha256")
            .join(digest.trim_start_matches("sha256:"));
        let data = std::fs::read(&path).with_context(|| format!("copied layout lacks {digest}"))?;
        ensure!(
            sha256_of(&data) == digest,
            "copied blob {digest} is corrupt"
        );
    }
    Ok(())
}

async fn skopeo(ctx: &Ctx, args: &[String]) -> Result<()> {
    let output = tokio::process::Command::new(&ctx.cli.skopeo)
        .args(args)
        .output()
        .await
        .with_context(|| format!("running {}", ctx.cli.skopeo.display()))?;
    ensure!(
        output.status.success(),
        "skopeo {} failed ({}): {}",
        redacted(args),
        output.status,
        String::from_utf8_lossy(&output.stderr).trim()
    );
    Ok(())
}

/// The command line for error messages, without the password.
fn redacted(args: &[String]) -> String {
    let mut out = Vec::with_capacity(args.len());
    let mut hide_next = false;
    for arg in args {
        if hide_next {
            let user = arg.split(':').next().unwrap_or_default();
            out.push(format!("{user}:***"));
        } else {
            out.push(arg.clone());
        }
        hide_next = arg.ends_with("-creds");
    }
    out.join(" ")
}

fn creds(registry: &Registry) -> Option<String> {
    registry
        .spec
        .credentials
        .as_ref()
        .map(|c| format!("{}:{}", c.user, c.password))
}

async fn copy_in(ctx: &Ctx, registry: &Registry, src: &Path, repo: &str) -> Result<f64> {
    let from = format!("oci:{}:{TAG}", src.display());
    let to = format!("docker://{}/{repo}:{TAG}", registry.host_port());
    timed_copy(ctx, registry, "dest", &[], from, to).await
}

async fn copy_out(ctx: &Ctx, registry: &Registry, repo: &str, dest: &Path) -> Result<f64> {
    let from = format!("docker://{}/{repo}:{TAG}", registry.host_port());
    let to = format!("oci:{}:{TAG}", dest.display());
    let options = ["--dest-oci-accept-uncompressed-layers"];
    timed_copy(ctx, registry, "src", &options, from, to).await
}

/// Logs one round's copy time on target `t` and records it in `section`.
fn record_copy_time(section: &mut Section, round: usize, t: usize, registry: &Registry, secs: f64) {
    eprintln!(
        "[{}] round {} {}: {secs:.2} s",
        section.id,
        round + 1,
        registry.name()
    );
    section.record(t, Sample::lower("copy time", "s", secs));
}

/// `skopeo copy` from `from` to `to`, the registry being its `side`
/// (`src` or `dest`) for TLS and credentials; returns the seconds it took.
async fn timed_copy(
    ctx: &Ctx,
    registry: &Registry,
    side: &str,
    options: &[&str],
    from: String,
    to: String,
) -> Result<f64> {
    let mut args: Vec<String> = ["copy", "--quiet", "--preserve-digests"]
        .iter()
        .chain(options)
        .map(|a| a.to_string())
        .collect();
    args.push(format!(
        "--{side}-tls-verify={}",
        registry.spec.url.scheme() == "https"
    ));
    if let Some(c) = creds(registry) {
        args.extend([format!("--{side}-creds"), c]);
    }
    args.extend([from, to]);
    let started = Instant::now();
    skopeo(ctx, &args).await?;
    Ok(started.elapsed().as_secs_f64())
}

/// After copy-in, the registry must serve our manifest and every blob.
async fn verify_pushed(registry: &Registry, repo: &str, image: &Image) -> Result<()> {
    let digest = registry.manifest_digest(repo, TAG).await?;
    ensure!(
        digest.as_deref() == Some(image.manifest_digest.as_str()),
        "after copy-in the tag resolves to {digest:?}, expected {}",
        image.manifest_digest
    );
    for blob in image.blobs() {
        let url = registry.url(&format!("v2/{repo}/blobs/{}", sha256_of(blob)))?;
        registry
            .call_bare(Method::HEAD, url, &[StatusCode::OK])
            .await
            .context("blob missing after copy-in")?;
    }
    Ok(())
}

fn remove_dir(path: &Path) {
    if let Err(e) = std::fs::remove_dir_all(path)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        eprintln!("warning: could not remove {}: {e}", path.display());
    }
}

/// Runs copy-in then copy-out for each target in turn, every round. Copy-out
/// reads the image that copy-in just pushed, so copy-in always runs (and is
/// only reported when selected).
pub async fn copy(ctx: &Ctx) -> Vec<Section> {
    let cli = &ctx.cli;
    let want_in = cli.wants(ScenarioName::SkopeoCopyIn);
    let want_out = cli.wants(ScenarioName::SkopeoCopyOut);
    let layer_size = tar_size(cli.skopeo_layer_size.0 as usize);
    let image_mib = (layer_size * cli.skopeo_layers) as f64 / super::MIB;
    let common = format!(
        "The image is an OCI layout with {} uncompressed tar layers (each a single file of \
         {} random bytes, {:.1} MiB of layers in all), a unique config and an OCI manifest. \
         Every round generates new layers and copies into a fresh repository, so nothing can \
         be deduplicated. skopeo runs with `--preserve-digests` so that it moves the bytes \
         unchanged instead of gzip-compressing random data (which would time skopeo's \
         compressor, not the registry). Times include skopeo's start-up (about 0.1 s).",
        cli.skopeo_layers, cli.skopeo_layer_size, image_mib
    );
    let mut section_in = Section::new(
        "skopeo-copy-in",
        "skopeo copy from an OCI layout into the registry",
        format!(
            "`skopeo copy --dest-tls-verify=false --dest-creds U:P oci:DIR:{TAG} \
             docker://HOST/<repo>:{TAG}`. {common} Afterwards the tag must resolve to the \
             source manifest digest and every blob must exist."
        ),
        ctx.columns(),
    );
    let mut section_out = Section::new(
        "skopeo-copy-out",
        "skopeo copy from the registry into an OCI layout",
        format!(
            "`skopeo copy --src-tls-verify=false --src-creds U:P docker://HOST/<repo>:{TAG} \
             oci:OUTDIR:{TAG}` of the image the same round's copy-in pushed (plus \
             `--dest-oci-accept-uncompressed-layers`). {common} Afterwards the layout must \
             hold the source manifest and every blob with a correct digest."
        ),
        ctx.columns(),
    );
    for round in 0..cli.rounds {
        let dir = ctx
            .scratch
            .join(format!("skopeo-{}-{}", ctx.run_id, round + 1));
        let src = dir.join("src");
        let seed = data::seed(ctx.run_seed, "skopeo", round, 0);
        let (layers, file_size) = (cli.skopeo_layers, cli.skopeo_layer_size.0 as usize);
        let src_for_write = src.clone();
        let prepared = tokio::task::spawn_blocking(move || {
            let image = Image::generate(seed, layers, file_size);
            write_layout(&src_for_write, &image).map(|_| image)
        })
        .await
        .map_err(anyhow::Error::from)
        .and_then(|r| r);
        let image = match prepared {
            Ok(image) => image,
            Err(e) => {
                let e = e.context("writing the OCI layout");
                section_in.fail_all(&e);
                section_out.fail_all(&e);
                break;
            }
        };
        for (t, registry) in ctx.targets.iter().enumerate() {
            if (want_in && section_in.failed(t)) || (want_out && section_out.failed(t)) {
                continue;
            }
            let repo = ctx.repo(&format!("skopeo-{}", round + 1));
            let pushed = async {
                let secs = copy_in(ctx, registry, &src, &repo).await?;
                verify_pushed(registry, &repo, &image).await?;
                Ok::<_, anyhow::Error>(secs)
            }
            .await;
            match pushed {
                Ok(secs) => record_copy_time(&mut section_in, round, t, registry, secs),
                Err(e) => {
                    eprintln!("[skopeo-copy-in] {} FAILED: {e:#}", registry.name());
                    section_in.fail(t, &e);
                    section_out.fail(t, &e.context("copy-in, needed by copy-out, failed"));
                    continue;
                }
            }
            if !want_out {
                continue;
            }
            let out = dir.join(format!("out-{t}"));
            let pulled = async {
                let secs = copy_out(ctx, registry, &repo, &out).await?;
                let check_dir = out.clone();
                let image_check = image.clone();
                tokio::task::spawn_blocking(move || verify_layout(&check_dir, &image_check))
                    .await??;
                Ok::<_, anyhow::Error>(secs)
            }
            .await;
            remove_dir(&out);
            match pulled {
                Ok(secs) => record_copy_time(&mut section_out, round, t, registry, secs),
                Err(e) => {
                    eprintln!("[skopeo-copy-out] {} FAILED: {e:#}", registry.name());
                    section_out.fail(t, &e);
                }
            }
        }
        remove_dir(&dir);
    }
    let mut sections = Vec::new();
    if want_in {
        sections.push(section_in);
    }
    if want_out {
        sections.push(section_out);
    }
    sections
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hides_passwords() {
        let args: Vec<String> = ["copy", "--dest-creds", "admin:secret", "oci:x:y"]
            .map(String::from)
            .to_vec();
        assert_eq!(redacted(&args), "copy --dest-creds admin:*** oci:x:y");
    }

    #[test]
    fn layout_round_trip() -> Result<()> {
        let dir: std::path::PathBuf =
            std::env::temp_dir().join(format!("berth-bench-layout-{}", std::process::id()));
        let image = Image::generate(3, 2, 100);
        write_layout(&dir, &image)?;
        let result = verify_layout(&dir, &image);
        remove_dir(&dir);
        result
    }
}
