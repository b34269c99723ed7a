//! `--sbom`, `--provenance`, `--sbom-file`, `--provenance-file`: shared by rebase (one image
//! and fleets) and append.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::human_bytes;
use super::text::push_line;
use ocipatch::attest::SbomFormat;
use ocipatch::ops::attest::{self, AttestOptions, Attestation};

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum SbomArg {
    Spdx,
    Cyclonedx,
}

#[derive(Args, Debug, Default)]
pub struct AttestArgs {
    /// Make an SBOM of every written platform image (every OS package of its package
    /// databases with its purl, the release, the base, the layers): SPDX 2.3 or CycloneDX 1.6
    /// JSON, byte-identical across runs (its time: SOURCE_DATE_EPOCH, else the config's
    /// created), attached to that platform's manifest as an OCI 1.1 referrer (oci: and
    /// docker:// destinations; --sbom-file for archives)
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub sbom: Option<SbomArg>,
    /// Make the provenance of the written image and attach it to the image as an OCI 1.1
    /// referrer: an in-toto statement with a SLSA v1 predicate (inputs by digest, parameters,
    /// ocipatch's version)
    #[arg(long)]
    pub provenance: bool,
    /// Write the SBOM(s) to PATH instead of attaching them: a file for one platform of one
    /// image, else a directory with one file per image and platform
    /// ([N-]OS-ARCH[-VARIANT].spdx.json or .cdx.json, N the image's position in a fleet)
    #[arg(long, value_name = "PATH", requires = "sbom")]
    pub sbom_file: Option<PathBuf>,
    /// Write the provenance to PATH instead of attaching it: a file for one image, else (a
    /// fleet) a directory with N-provenance.intoto.json per image
    #[arg(long, value_name = "PATH", requires = "provenance")]
    pub provenance_file: Option<PathBuf>,
}

/// `SOURCE_DATE_EPOCH` as reproducible-builds.org defines it: decimal Unix seconds.
pub fn source_date_epoch() -> anyhow::Result<Option<i64>> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) if !v.is_empty() => Ok(Some(v.trim().parse().map_err(|_| {
            anyhow::anyhow!("SOURCE_DATE_EPOCH={v:?} is not a number of seconds")
        })?)),
        _ => Ok(None),
    }
}

impl AttestArgs {
    pub fn options(&self) -> anyhow::Result<AttestOptions> {
        Ok(AttestOptions {
            sbom: self.sbom.map(|s| match s {
                SbomArg::Spdx => SbomFormat::Spdx,
                SbomArg::Cyclonedx => SbomFormat::Cyclonedx,
            }),
            provenance: self.provenance,
            source_date_epoch: source_date_epoch()?,
            detached: attest::Detached {
                sbom: self.sbom_file.is_some(),
                provenance: self.provenance_file.is_some(),
            },
        })
    }

    /// Writes the documents the -file flags ask for (nothing with `dry_run`): `images` holds
    /// each image's documents, with its fleet position (from 1) when the run is a fleet.
    pub fn write(
        &self,
        images: Vec<(Option<usize>, &mut Vec<Attestation>)>,
        dry_run: bool,
    ) -> anyhow::Result<()> {
        if dry_run {
            return Ok(());
        }
        let mut all: Vec<(Option<usize>, &mut Attestation)> = images
            .into_iter()
            .flat_map(|(n, docs)| docs.iter_mut().map(move |d| (n, d)))
            .collect();
        for (want_sbom, path) in [(true, &self.sbom_file), (false, &self.provenance_file)] {
            let Some(path) = path else { continue };
            let mut chosen: Vec<&mut (Option<usize>, &mut Attestation)> = all
                .iter_mut()
                .filter(|(_, d)| d.is_sbom() == want_sbom)
                .collect();
            let view: Vec<(Option<usize>, &Attestation)> =
                chosen.iter().map(|(n, d)| (*n, &**d)).collect();
            let paths = attest::document_paths(path, &view);
            let pairs: Vec<(PathBuf, &Attestation)> = paths
                .iter()
                .cloned()
                .zip(view.iter().map(|(_, d)| *d))
                .collect();
            attest::write_documents(&pairs)?;
            for (entry, p) in chosen.iter_mut().zip(paths) {
                entry.1.file = Some(p);
            }
        }
        Ok(())
    }
}

/// One line per document: `  sbom (linux/amd64): application/spdx+json sha256:… (12 KiB) of
/// sha256:…, written to PATH`.
pub fn summary<'a>(s: &mut String, docs: impl IntoIterator<Item = &'a Attestation>) {
    for d in docs {
        let what = match &d.platform {
            Some(p) => format!("sbom ({p})"),
            None => "provenance".to_string(),
        };
        let place = match (&d.file, &d.referrer) {
            (Some(f), _) => format!(", written to {}", f.display()),
            (None, Some(r)) => format!(", attached as referrer {r}"),
            (None, None) => String::new(),
        };
        push_line!(
            s,
            "  {what}: {} {} ({}) of {}{place}",
            d.artifact_type,
            d.digest,
            human_bytes(d.size),
            d.subject.digest
        );
    }
}
