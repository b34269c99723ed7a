//! Messages that help a newcomer act: what a command is about to do that they may not expect,
//! and which flag fixes an error.

use ocipatch::model::Reference;
use ocipatch::ops::load::load;
use ocipatch::plan::rebase::ANNOTATION_BASE_NAME;
use ocipatch::transport::{open_source, RegistryOptions};

/// For `check` without `--base`: the base the image's `base.name` annotation names, when that
/// is a registry. `check` would contact it, which surprises someone who only has local
/// layouts (issue 13: `check oci:testdata/images:app` went to example.com). `None` when the
/// image cannot be read (the real run reports that) or names a local base.
pub fn implicit_registry_base(image: &Reference, registry: &RegistryOptions) -> Option<String> {
    let src = open_source(image, registry).ok()?;
    let loaded = load(src.as_ref(), &src.root().ok()?).ok()?;
    let name = loaded
        .images()
        .first()?
        .manifest
        .annotations()
        .get(ANNOTATION_BASE_NAME)?
        .clone();
    // The same reading as ops::check: our syntax, else a plain registry name.
    let base = Reference::parse(&name)
        .or_else(|_| Reference::parse(&format!("docker://{name}")))
        .ok()?;
    (base.transport() == "docker").then(|| base.to_string())
}

/// The note printed before `check` contacts a registry the user did not name.
pub fn check_contacts_registry(base: &str) -> String {
    format!(
        "ocipatch: note: no --base given: comparing with {base}, named by the image's \
{ANNOTATION_BASE_NAME} annotation; this contacts that registry (pass --base REF to compare \
with another copy, e.g. --base oci:DIR:TAG)"
    )
}

/// The hint added to a `check` error when the base came from the annotation.
pub fn check_failed_without_base(e: &anyhow::Error) -> anyhow::Error {
    anyhow::anyhow!(
        "{e:#} (the base was taken from the image's {ANNOTATION_BASE_NAME} annotation; pass \
--base REF to compare with a base you can reach, e.g. --base oci:DIR:TAG)"
    )
}

/// For a docker-archive destination: the digest tools agree on. The format stores no
/// manifest, so every reader makes one up (ours with uncompressed layer descriptors, skopeo
/// its own), and the digest `rebase` prints is the manifest it planned; the config digest
/// (Docker's image ID) is the one `docker load`, `docker images` and every tool share.
pub fn docker_archive_note(dest: &Reference, registry: &RegistryOptions) -> Option<String> {
    if dest.transport() != "docker-archive" {
        return None;
    }
    let report = ocipatch::ops::inspect(dest, None, registry).ok()?;
    let config = &report.platforms.first()?.config;
    Some(format!(
        "  image ID (config digest) {config}: what docker load and docker images show. A \
docker-archive stores no manifest, so manifest digests differ from tool to tool (README: One \
image, three digests)"
    ))
}
