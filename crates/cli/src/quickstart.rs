//! `driftless quickstart`: the whole loop on this machine in one command.
//!
//! Makes (once) a bare Git repository with sample content, a working clone for the user,
//! a live folder, and a config; then serves it and prints what to try.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use driftless_engine::{Config, Engine, EngineOptions};

use crate::local::{shutdown_signal, state_dir};

const APP: &str = "site";

#[derive(Args)]
pub struct QuickstartArgs {
    /// Folder for the sample repository, working clone, live folder and state.
    /// Default: `quickstart` inside the state folder (~/.local/state/driftless).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Address to serve the API on (loopback only).
    #[arg(long, default_value = "127.0.0.1:7420")]
    listen: SocketAddr,
}

const SAMPLE: &[(&str, &str, bool)] = &[
    (
        "site/index.html",
        "<!doctype html>\n<title>driftless quickstart</title>\n<h1>Hello from Git</h1>\n<p>This file is managed by driftless. Edit it in the working clone, not here.</p>\n",
        false,
    ),
    (
        "site/config/app.conf",
        "# Settings for the sample app; driftless keeps this file exactly as Git has it.\nlisten = 127.0.0.1:8080\nworkers = 4\nlog_level = info\n",
        false,
    ),
    (
        "site/bin/healthcheck.sh",
        "#!/bin/sh\n# Git's executable bit travels with the file.\necho ok\n",
        true,
    ),
];

pub fn run(args: QuickstartArgs) -> anyhow::Result<ExitCode> {
    if !args.listen.ip().is_loopback() {
        bail!("quickstart serves on loopback only; got {}", args.listen);
    }
    let dir = match args.dir {
        Some(dir) => dir,
        None => state_dir(None)?.join("quickstart"),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let dir =
        std::fs::canonicalize(&dir).with_context(|| format!("resolving {}", dir.display()))?;
    let origin = dir.join("origin.git");
    let work = dir.join("work");
    let live = dir.join("live");
    let config_path = dir.join("driftless.yaml");

    if !origin.exists() {
        println!("Creating a sample Git repository in {} …", dir.display());
        create_repository(&origin, &work)
            .context("setting up the sample repository (is git installed?)")?;
    } else {
        println!(
            "Reusing the quickstart in {} (delete it to start afresh).",
            dir.display()
        );
    }
    write_hook(&origin, args.listen)?;
    std::fs::write(&config_path, config_text())
        .with_context(|| format!("writing {}", config_path.display()))?;
    let config = Config::load(&config_path).map_err(|err| anyhow::anyhow!("{err}"))?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let engine = Engine::start(
            &config,
            EngineOptions {
                state_dir: dir.join("state"),
                cache_dir: dir.join("state/git-cache"),
                background: true,
            },
        )?;
        let listener = tokio::net::TcpListener::bind(args.listen).await.with_context(|| {
            format!(
                "listening on {} (is another driftless running? pick another port with --listen)",
                args.listen
            )
        })?;
        let first_sync = wait_for_first_sync(&engine, Duration::from_secs(60)).await;
        print_guide(&dir, &work, &live, args.listen, first_sync.as_deref());
        driftless_server::serve(engine, listener, shutdown_signal())
            .await
            .context("serving HTTP")?;
        Ok(ExitCode::SUCCESS)
    })
}

fn config_text() -> String {
    format!(
        "# Written by `driftless quickstart`; rewritten each time it starts.\napps:\n  - name: {APP}\n    source:\n      repo: origin.git\n      ref: main\n      path: site\n      interval: 10s\n    target:\n      files:\n        root: live\n    sync:\n      auto: true\n      prune: true\n      selfHeal: true\n"
    )
}

fn git(cwd: &Path, args: &[&str]) -> anyhow::Result<String> {
    let output = Command::new("git")
        .args(args)
        .current_dir(cwd)
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .with_context(|| format!("running git {}", args.join(" ")))?;
    if !output.status.success() {
        bail!(
            "git {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

fn create_repository(origin: &Path, work: &Path) -> anyhow::Result<()> {
    let parent = origin
        .parent()
        .expect("origin lives inside the quickstart folder");
    git(
        parent,
        &[
            "init",
            "--quiet",
            "--bare",
            "--initial-branch=main",
            "origin.git",
        ],
    )?;
    git(parent, &["clone", "--quiet", "origin.git", "work"])?;
    // Commits made by the user need an identity; give the clone one only if Git has none.
    if git(work, &["config", "user.email"]).is_err() {
        git(work, &["config", "user.name", "Quickstart User"])?;
        git(
            work,
            &["config", "user.email", "quickstart@driftless.invalid"],
        )?;
    }
    for (path, text, executable) in SAMPLE {
        let file = work.join(path);
        std::fs::create_dir_all(file.parent().expect("sample paths have a folder"))?;
        std::fs::write(&file, text)?;
        #[cfg(unix)]
        if *executable {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755))?;
        }
    }
    git(work, &["add", "."])?;
    git(work, &["commit", "--quiet", "-m", "Add the sample site"])?;
    git(work, &["push", "--quiet", "origin", "main"])?;
    Ok(())
}

/// A post-receive hook that tells the local server that `main` moved, so a push goes
/// live at once instead of at the next poll.
fn write_hook(origin: &Path, listen: SocketAddr) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("finding the driftless executable")?;
    let hook = origin.join("hooks/post-receive");
    let text = format!(
        "#!/bin/sh\n# Written by `driftless quickstart`: a push refreshes the app at once.\n'{}' app refresh {APP} --server http://{listen} >/dev/null 2>&1 || true\n",
        exe.display().to_string().replace('\'', r"'\''")
    );
    std::fs::write(&hook, text).with_context(|| format!("writing {}", hook.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755))?;
    }
    Ok(())
}

/// Waits until the app has synced once; returns the revision, or `None` on timeout.
async fn wait_for_first_sync(engine: &Engine, limit: Duration) -> Option<String> {
    let start = Instant::now();
    let mut events = engine.subscribe();
    loop {
        if let Ok(app) = engine.app(APP) {
            if app.applied_revision.is_some() && app.revision == app.applied_revision {
                return app.applied_revision;
            }
            if let Some(error) = app.error {
                eprintln!("The first sync failed:\n{error}");
                return None;
            }
        }
        let left = limit.checked_sub(start.elapsed())?;
        let _ = tokio::time::timeout(left.min(Duration::from_millis(200)), events.recv()).await;
    }
}

fn print_guide(dir: &Path, work: &Path, live: &Path, listen: SocketAddr, revision: Option<&str>) {
    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "driftless".to_owned());
    let server = format!("http://{listen}");
    let synced = match revision {
        Some(rev) => format!("synced revision {}", rev.get(..7).unwrap_or(rev)),
        None => "not synced yet (see the log above)".to_owned(),
    };
    println!(
        r#"
driftless quickstart is running — app "{APP}" {synced}.

  Working clone (edit and push here):  {work}
  Live folder (driftless keeps it):    {live}
  Config:                              {config}
  API:                                 {server}/api/v1/apps

Try, in another terminal:

  1. Change a live file behind Git's back; driftless reverts it within a second:
       echo tampered >> {live}/index.html
       cat {live}/index.html

  2. Commit a change; the push goes live at once:
       cd {work}
       echo '<p>Hello, driftless</p>' >> site/index.html
       git commit -am "Say hello" && git push

  3. Delete a file in Git; driftless prunes it from the live folder:
       git rm site/config/app.conf && git commit -m "Drop app.conf" && git push

  4. See the history, then roll back to the first revision:
       {exe} app history {APP} --server {server}
       {exe} app rollback {APP} <REVISION> --server {server}   # pauses auto-sync
       {exe} app resume {APP} --server {server}                # follow main again

  {exe} app get {APP} --server {server} shows status, health and objects.
  Press Ctrl-C to stop; run quickstart again to pick up where you left off.
"#,
        work = work.display(),
        live = live.display(),
        config = dir.join("driftless.yaml").display(),
    );
}
