//! `driftless render` and `driftless validate`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;
use driftless_model::{Object, Tree};
use driftless_render::{Limits, RenderErrors};
use driftless_source::{Credentials, DirTree, SourceCache};

#[derive(Args)]
pub struct RenderArgs {
    /// Folder to render (every *.yaml, *.yml and *.json under it). With --repo, the
    /// folder inside the repository; --path says the same.
    path: Option<String>,
    /// Render from a Git repository (URL or local path) instead of a local folder.
    #[arg(long)]
    repo: Option<String>,
    /// Branch, tag or commit id to render from --repo.
    #[arg(long = "ref", default_value = "main", requires = "repo")]
    reference: String,
    /// Folder inside --repo.
    #[arg(long = "path", id = "repo_path", requires = "repo")]
    repo_path: Option<String>,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = RenderFormat::Yaml)]
    output: RenderFormat,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum RenderFormat {
    Yaml,
    Json,
}

#[derive(Args)]
pub struct ValidateArgs {
    /// Folder to validate.
    path: PathBuf,
}

pub fn render(args: RenderArgs) -> anyhow::Result<ExitCode> {
    let objects = match &args.repo {
        Some(repo) => {
            let path = args
                .repo_path
                .clone()
                .or(args.path.clone())
                .unwrap_or_default();
            render_repo(repo, &args.reference, &path)?
        }
        None => {
            let Some(path) = &args.path else {
                bail!("give a folder to render, or --repo URL [--ref REF] [--path P]");
            };
            match render_dir(std::path::Path::new(path))? {
                Ok(objects) => objects,
                Err(errors) => return Ok(report(errors)),
            }
        }
    };
    match args.output {
        RenderFormat::Yaml => print!("{}", driftless_render::to_yaml(&objects)),
        RenderFormat::Json => println!("{}", driftless_render::to_json(&objects)),
    }
    Ok(ExitCode::SUCCESS)
}

pub fn validate(args: ValidateArgs) -> anyhow::Result<ExitCode> {
    match render_dir(&args.path)? {
        Ok(objects) => {
            println!("{}: valid, {} objects", args.path.display(), objects.len());
            Ok(ExitCode::SUCCESS)
        }
        Err(errors) => Ok(report(errors)),
    }
}

/// Prints every render error and returns exit code 1.
fn report(errors: RenderErrors) -> ExitCode {
    for error in &errors.0 {
        eprintln!("{error}");
    }
    eprintln!(
        "{} error{}; nothing of this revision would be applied",
        errors.0.len(),
        if errors.0.len() == 1 { "" } else { "s" }
    );
    ExitCode::from(1)
}

/// Renders a local folder. The outer error is for a folder that cannot be read at all.
fn render_dir(path: &std::path::Path) -> anyhow::Result<Result<Vec<Object>, RenderErrors>> {
    if !path.is_dir() {
        bail!("{}: not a folder", path.display());
    }
    let tree =
        DirTree::new(path.to_path_buf()).with_context(|| format!("opening {}", path.display()))?;
    Ok(render_tree(&tree, ""))
}

fn render_repo(repo: &str, reference: &str, path: &str) -> anyhow::Result<Vec<Object>> {
    let cache_dir = std::env::temp_dir().join(format!("driftless-render-{}", std::process::id()));
    let cache = SourceCache::new(cache_dir.clone());
    let result = (|| {
        let handle = cache.repo(repo, Credentials::default())?;
        let revision = handle.update(reference)?;
        let tree = handle.tree(&revision)?;
        Ok::<_, driftless_source::SourceError>(render_tree(&tree, path))
    })();
    let _ = std::fs::remove_dir_all(&cache_dir);
    match result.with_context(|| format!("reading {repo} at {reference}"))? {
        Ok(objects) => Ok(objects),
        Err(errors) => bail!("{errors}"),
    }
}

fn render_tree(tree: &dyn Tree, path: &str) -> Result<Vec<Object>, RenderErrors> {
    driftless_render::render_manifests(tree, path, &Limits::default())
}
