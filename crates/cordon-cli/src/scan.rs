//! `cordon scan`: known vulnerabilities (OSV records) in the OS packages
//! of images (see crates/cordon-scan and docs/scan.md).

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use cordon_scan::osv::Db;
use cordon_scan::{export, inventory, render, ScanError, Severity};

use crate::{load, CmdResult, Failure};

/// `cordon scan` arguments.
#[derive(Args)]
pub struct ScanArgs {
    /// Images to scan (names or ids).
    #[arg(value_name = "IMAGE")]
    images: Vec<String>,
    /// Scan the images of the running containers (as well).
    #[arg(long)]
    running: bool,
    /// OSV records: a directory of `.json` records, or an ecosystem's
    /// `all.zip` (never downloaded by cordon; see docs/scan.md).
    #[arg(long, value_name = "PATH")]
    db: PathBuf,
    /// text (a table; `table` is an alias), json, sarif (SARIF 2.1.0) or
    /// cyclonedx (the inventory as a CycloneDX 1.5 SBOM).
    #[arg(short = 'o', long = "output", value_enum, default_value = "text")]
    output: Output,
    /// Exit 1 when a finding is at or above this severity (default: any).
    #[arg(long = "fail-on", value_enum, default_value = "any")]
    fail_on: Level,
}

/// Output formats of `cordon scan`.
#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Output {
    /// For people: a table.
    #[value(name = "text", alias = "table")]
    Text,
    /// For programs.
    Json,
    /// For code-scanning tools.
    Sarif,
    /// The packages, as a CycloneDX 1.5 SBOM.
    Cyclonedx,
}

/// `--fail-on` levels.
#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Level {
    /// Any finding, even without a known severity.
    Any,
    /// Low and above.
    Low,
    /// Medium and above.
    Medium,
    /// High and critical.
    High,
    /// Critical only.
    Critical,
    /// Never exit 1 for findings.
    None,
}

fn fail(e: ScanError) -> Failure {
    Failure::env(format!("cordon scan: {e}"))
}

/// Scans the images and prints the findings.
pub fn run(args: ScanArgs) -> CmdResult {
    if args.images.is_empty() && !args.running {
        return Err(Failure::env(
            "cordon scan: name at least one IMAGE, or --running",
        ));
    }
    // The records load on their own thread while the images stream out of
    // Docker; matching waits for both.
    let db_path = args.db.clone();
    let loading = std::thread::spawn(move || Db::load(&db_path));
    let (scanned, findings) = load::runtime()?.block_on(async {
        let docker = cordon_docker::connect().await.map_err(Failure::env)?;
        let running = export::running(&docker).await.map_err(fail)?;
        let mut targets: Vec<(String, String)> = Vec::new();
        for image in &args.images {
            let id = export::image_id(&docker, image).await.map_err(fail)?;
            targets.push((image.clone(), id));
        }
        if args.running {
            for (id, (image, _)) in &running {
                targets.push((image.clone(), id.clone()));
            }
        }
        targets.sort_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(&b.0)));
        targets.dedup_by(|a, b| a.1 == b.1);
        let mut scanned = Vec::new();
        for (image, id) in targets {
            let fs = export::rootfs(&docker, &id).await.map_err(fail)?;
            let containers = running.get(&id).map(|r| r.1.clone()).unwrap_or_default();
            let inv = inventory::read(&fs).map_err(|message| {
                fail(ScanError::Export {
                    image: image.clone(),
                    message,
                })
            })?;
            // Never silent: a database cordon cannot read is one line each.
            for line in &inv.unread {
                eprintln!("cordon scan: warning: {image}: {line}");
            }
            scanned.push((image, inv, containers));
        }
        let records = loading
            .join()
            .map_err(|_| Failure::env("cordon scan: loading the records failed"))?
            .map_err(fail)?;
        let mut findings = Vec::new();
        for (image, inv, containers) in &scanned {
            findings.extend(cordon_scan::find(&records, inv, image, containers));
        }
        let scanned: Vec<_> = scanned.into_iter().map(|(i, inv, _)| (i, inv)).collect();
        findings.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.id.cmp(&b.id)));
        Ok::<_, Failure>((scanned, findings))
    })?;
    let text = match args.output {
        Output::Text => render::table::render(&findings, scanned.len()),
        Output::Json => render::json::render(&scanned, &findings),
        Output::Sarif => render::sarif::render(&findings),
        Output::Cyclonedx => render::cyclonedx::render(&scanned),
    };
    println!("{}", text.trim_end());
    let level = match args.fail_on {
        Level::Any => Severity::Unknown,
        Level::Low => Severity::Low,
        Level::Medium => Severity::Medium,
        Level::High => Severity::High,
        Level::Critical => Severity::Critical,
        Level::None => return Ok(()),
    };
    let failing: Vec<_> = findings.iter().filter(|f| f.severity >= level).collect();
    match failing.first() {
        None => Ok(()),
        Some(worst) => Err(Failure::invalid(format!(
            "cordon scan: {} finding(s) at or above {} (worst: {} in {} of {})",
            failing.len(),
            if level == Severity::Unknown {
                "any"
            } else {
                level.as_str()
            },
            worst.id,
            worst.source,
            worst.image
        ))),
    }
}
