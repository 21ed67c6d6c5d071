//! `driftless render` and `driftless validate`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;
use driftless_model::{Object, Tree};
use driftless_render::{KustomizeOutput, Limits, RenderErrors};
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
    let rendered = match &args.repo {
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
                Ok(rendered) => rendered,
                Err(errors) => return Ok(report(errors)),
            }
        }
    };
    match (args.output, rendered) {
        // Byte for byte what `kustomize build` prints.
        (RenderFormat::Yaml, Rendered::Kustomize(out)) => print!("{}", out.yaml),
        (RenderFormat::Json, Rendered::Kustomize(out)) => {
            println!("{}", driftless_render::to_json(&out.objects))
        }
        (RenderFormat::Yaml, Rendered::Plain(objects)) => {
            print!("{}", driftless_render::to_yaml(&objects))
        }
        (RenderFormat::Json, Rendered::Plain(objects)) => {
            println!("{}", driftless_render::to_json(&objects))
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn validate(args: ValidateArgs) -> anyhow::Result<ExitCode> {
    match render_dir(&args.path)? {
        Ok(rendered) => {
            let (count, how) = match &rendered {
                Rendered::Kustomize(out) => (out.objects.len(), " (kustomization)"),
                Rendered::Plain(objects) => (objects.len(), ""),
            };
            println!("{}: valid{how}, {count} objects", args.path.display());
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
fn render_dir(path: &std::path::Path) -> anyhow::Result<Result<Rendered, RenderErrors>> {
    if !path.exists() {
        bail!("{}: no such file or folder", path.display());
    }
    // Kustomizations may reach `../base`, so the tree is rooted at the enclosing Git work
    // tree (as it would be when rendered from Git), or at `/` outside one.
    let absolute =
        std::fs::canonicalize(path).with_context(|| format!("resolving {}", path.display()))?;
    let search_from = if absolute.is_dir() {
        absolute.as_path()
    } else {
        absolute.parent().unwrap_or(&absolute)
    };
    let root = search_from
        .ancestors()
        .find(|dir| dir.join(".git").exists())
        .unwrap_or_else(|| std::path::Path::new("/"));
    let rel = absolute
        .strip_prefix(root)
        .expect("an ancestor is a prefix")
        .to_string_lossy()
        .into_owned();
    let tree =
        DirTree::new(root.to_path_buf()).with_context(|| format!("opening {}", root.display()))?;
    Ok(render_tree(&tree, &rel))
}

fn render_repo(repo: &str, reference: &str, path: &str) -> anyhow::Result<Rendered> {
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
        Ok(rendered) => Ok(rendered),
        Err(errors) => bail!("{errors}"),
    }
}

/// A folder's rendering: a kustomization's exact output, or plain manifests.
enum Rendered {
    Kustomize(KustomizeOutput),
    Plain(Vec<Object>),
}

fn render_tree(tree: &dyn Tree, path: &str) -> Result<Rendered, RenderErrors> {
    if driftless_render::is_kustomization(tree, path)? {
        driftless_render::render_kustomization(tree, path).map(Rendered::Kustomize)
    } else {
        driftless_render::render_manifests(tree, path, &Limits::default()).map(Rendered::Plain)
    }
}
