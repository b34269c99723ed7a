//! `ocipatch append IMAGE --layer PATH [--delete PATH]... [--compression gzip|zstd] -o DEST`

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::progress::Bar;
use super::text::{errln, outln};
use super::{exit, human_bytes, print_json};
use ocipatch::model::reference::ReferenceError;
use ocipatch::model::Reference;
use ocipatch::ops::LayerCompression;
use ocipatch::ops::{self, AppendOptions};

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum CompressionArg {
    Gzip,
    Zstd,
}

/// What `append` starts from.
#[derive(Clone, Debug)]
pub enum AppendBase {
    /// An empty image (`scratch`).
    Scratch,
    /// An existing image.
    Image(Reference),
}

fn parse_base(s: &str) -> Result<AppendBase, ReferenceError> {
    if s == ops::append::SCRATCH {
        return Ok(AppendBase::Scratch);
    }
    Reference::parse(s).map(AppendBase::Image)
}

#[derive(Args, Debug)]
pub struct AppendArgs {
    /// The image to add a layer to (every platform of an index gets it), or `scratch` to
    /// start from an empty image (see --platform)
    #[arg(value_parser = super::secrets::quiet(parse_base))]
    pub image: AppendBase,
    /// The platform of a `scratch` image: OS/ARCH[/VARIANT] (default linux/amd64)
    #[arg(long, value_name = "OS/ARCH")]
    pub platform: Option<String>,
    /// A directory whose contents become the layer, or a tar file (plain, gzip or zstd)
    #[arg(long, value_name = "PATH")]
    pub layer: PathBuf,
    /// Delete PATH from the image (a whiteout in the new layer); repeatable
    #[arg(long, value_name = "PATH")]
    pub delete: Vec<String>,
    /// Compression of the new layer
    #[arg(long, value_enum, default_value = "gzip")]
    pub compression: CompressionArg,
    /// Where to write the result
    #[arg(short = 'o', long = "output", value_name = "DEST", value_parser = super::secrets::reference())]
    pub dest: Reference,
    /// Keep file owners and exact modes instead of normalising them (uid/gid 0, 0644/0755)
    #[arg(long)]
    pub keep_owners: bool,
    /// Allow fifos and device files in the layer
    #[arg(long)]
    pub allow_devices: bool,
    /// Allow relative symlinks that point outside the image root
    #[arg(long)]
    pub allow_escaping_symlinks: bool,
    /// Decide everything, write nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Give an oci: destination its own copy of every blob instead of hard links to the
    /// source layout's blob files (for tools that edit blobs in place); a link an earlier run
    /// made is replaced by a copy
    #[arg(long)]
    pub copy: bool,
    /// Print a machine-readable report on stdout instead of the digest
    #[arg(long)]
    pub json: bool,
    /// No summary on stderr
    #[arg(short, long)]
    pub quiet: bool,
    #[command(flatten)]
    pub attest: super::attest::AttestArgs,
    #[command(flatten)]
    pub registry: super::registry::RegistryArgs,
}

pub fn run(args: AppendArgs) -> anyhow::Result<i32> {
    let (image, scratch) = match args.image {
        AppendBase::Image(r) => {
            if args.platform.is_some() {
                anyhow::bail!(
                    "--platform applies only to `append scratch`; an image keeps its own platforms"
                );
            }
            (r, false)
        }
        // Not read by append_scratch; any reference fills the field.
        AppendBase::Scratch => (args.dest.clone(), true),
    };
    let opts = AppendOptions {
        image,
        dest: args.dest,
        layer: args.layer,
        deletes: args.delete,
        compression: match args.compression {
            CompressionArg::Gzip => LayerCompression::Gzip,
            CompressionArg::Zstd => LayerCompression::Zstd,
        },
        keep_owners: args.keep_owners,
        allow_devices: args.allow_devices,
        allow_escaping_symlinks: args.allow_escaping_symlinks,
        source_date_epoch: super::attest::source_date_epoch()?,
        dry_run: args.dry_run,
        registry: args.registry.options()?,
        write: ocipatch::transport::WriteOptions::default().copy_blobs(args.copy),
        attest: args.attest.options()?,
    };
    let result = if scratch {
        let platform = args.platform.as_deref().unwrap_or("linux/amd64");
        ops::append::append_scratch(platform, &opts, &Bar::new(args.quiet))
    } else {
        ops::append(&opts, &Bar::new(args.quiet))
    };
    // A file-system failure at the --layer input or the destination names its flag.
    let mut report = result.map_err(|e| {
        let e = e.at_argument("--layer", &opts.layer, false);
        match opts.dest.local_path() {
            Some(dest) => e.at_argument("-o", dest, true),
            None => e,
        }
    })?;
    args.attest
        .write(vec![(None, &mut report.attestations)], report.dry_run)?;
    if args.json {
        print_json(&report)?;
    } else {
        if !args.quiet {
            errln!(
                "{} layer {} ({}, diff ID {}) to {} [{}]",
                if report.dry_run {
                    "Would append"
                } else {
                    "Appended"
                },
                report.layer.digest,
                human_bytes(report.layer.size),
                report.layer.diff_id,
                report.image,
                report.platforms.join(", ")
            );
            if !report.dry_run {
                errln!(
                    "  written to {} ({})",
                    report.destination,
                    report.media_type
                );
            }
            let mut docs = String::new();
            super::attest::summary(&mut docs, &report.attestations);
            docs.lines().for_each(|l| errln!("{l}"));
        }
        outln!("{}", report.digest);
    }
    Ok(exit::OK)
}
