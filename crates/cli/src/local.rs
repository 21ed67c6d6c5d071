//! Commands that run the engine in this process: `serve`, `plan`, `apply`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use driftless_engine::{Config, Engine, EngineOptions};
use driftless_model::{Plan, TaskOp};
use serde::Serialize;

use crate::output;
use crate::{EngineArgs, LocalArgs, ServeArgs};

/// The state folder: `--state`, else `$XDG_STATE_HOME/driftless`, else
/// `~/.local/state/driftless`.
pub fn state_dir(explicit: Option<&PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(dir) = explicit {
        return Ok(dir.clone());
    }
    if let Some(xdg) = std::env::var_os("XDG_STATE_HOME").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(xdg).join("driftless"));
    }
    let home = std::env::var_os("HOME").context("neither --state nor HOME is set")?;
    Ok(PathBuf::from(home).join(".local/state/driftless"))
}

fn load(args: &EngineArgs) -> anyhow::Result<(Config, PathBuf)> {
    let config = Config::load(&args.config).map_err(|err| anyhow::anyhow!("{err}"))?;
    Ok((config, state_dir(args.state.as_ref())?))
}

fn engine_options(state: PathBuf, background: bool) -> EngineOptions {
    EngineOptions {
        cache_dir: state.join("git-cache"),
        state_dir: state,
        background,
    }
}

/// Who is asking, for history and audit: the local user.
pub fn local_actor() -> String {
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".to_owned());
    format!("cli:{user}")
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn selected(config: &Config, only: Option<&str>) -> anyhow::Result<Vec<String>> {
    match only {
        Some(name) if config.app(name).is_none() => {
            let known: Vec<&str> = config.apps.iter().map(|a| a.name()).collect();
            bail!(
                "no app named {name:?} in the config (apps: {})",
                known.join(", ")
            )
        }
        Some(name) => Ok(vec![name.to_owned()]),
        None if config.apps.is_empty() => bail!("the config has no apps"),
        None => Ok(config.apps.iter().map(|a| a.name().to_owned()).collect()),
    }
}

pub fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let (config, state) = load(&args.engine)?;
    if !args.listen.ip().is_loopback() && config.server.tokens.is_empty() {
        bail!(
            "refusing to listen on {}: without API tokens (server.tokens) driftless only listens on loopback (e.g. 127.0.0.1:7420)",
            args.listen
        );
    }
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(driftless_server::TlsConfig::load(cert, key)?),
        _ => None,
    };
    runtime()?.block_on(async move {
        let engine = Engine::start(&config, engine_options(state.clone(), true))?;
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("listening on {}", args.listen))?;
        tracing::info!(
            listen = %args.listen,
            state = %state.display(),
            apps = config.apps.len(),
            tokens = config.server.tokens.len(),
            tls = tls.is_some(),
            "driftless is serving"
        );
        driftless_server::serve_config(engine, &config, listener, tls.as_ref(), shutdown_signal())
            .await
            .context("serving HTTP")?;
        tracing::info!("stopped");
        Ok(ExitCode::SUCCESS)
    })
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutting down: finishing the step in flight");
}

/// A plan as scripts see it: no file contents, just what would change and how.
#[derive(Serialize)]
struct PlanView<'a> {
    app: &'a str,
    revision: &'a str,
    changes: bool,
    tasks: Vec<TaskView<'a>>,
}

#[derive(Serialize)]
struct TaskView<'a> {
    op: TaskOp,
    id: &'a driftless_model::ObjectRef,
    #[serde(skip_serializing_if = "Option::is_none")]
    diff: Option<&'a str>,
}

fn view<'a>(app: &'a str, plan: &'a Plan) -> PlanView<'a> {
    PlanView {
        app,
        revision: &plan.revision,
        changes: plan.has_changes(),
        tasks: plan
            .tasks
            .iter()
            .filter(|t| t.op != TaskOp::Unchanged)
            .map(|t| TaskView {
                op: t.op,
                id: &t.id,
                diff: t.diff.as_deref(),
            })
            .collect(),
    }
}

pub fn plan(args: LocalArgs) -> anyhow::Result<ExitCode> {
    let (config, state) = load(&args.engine)?;
    let apps = selected(&config, args.app.as_deref())?;
    let plans = runtime()?.block_on(async {
        let engine = Engine::start(&config, engine_options(state, false))?;
        let mut plans = Vec::new();
        for app in &apps {
            let plan = engine.plan(app).await.with_context(|| format!("app {app}"));
            plans.push((app.clone(), plan));
        }
        engine.shutdown().await;
        Ok::<_, anyhow::Error>(plans)
    })?;
    let mut any_changes = false;
    let mut failed = false;
    let mut views = Vec::new();
    for (app, plan) in &plans {
        match plan {
            Ok(plan) => {
                any_changes |= plan.has_changes();
                views.push(view(app, plan));
            }
            Err(err) => {
                failed = true;
                eprintln!("error: {err:#}");
            }
        }
    }
    if !output::print_structured(args.output, &views)? {
        let color = output::color();
        for v in &views {
            let plan = plans
                .iter()
                .find_map(|(name, p)| p.as_ref().ok().filter(|_| name == v.app))
                .expect("a view exists only for a successful plan");
            let (create, update, delete, unchanged) = plan.counts();
            println!(
                "app {}  revision {}  {create} to create, {update} to update, {delete} to prune, {unchanged} unchanged",
                v.app,
                output::short(&plan.revision)
            );
            for task in &v.tasks {
                let sign = match task.op {
                    TaskOp::Create => "+ create",
                    TaskOp::Update => "~ update",
                    TaskOp::Delete => "- prune ",
                    TaskOp::Unchanged => "  same  ",
                };
                println!("  {sign}  {}", task.id);
                if let Some(diff) = task.diff {
                    for line in output::paint_diff(diff, color).lines() {
                        println!("      {line}");
                    }
                }
            }
        }
        if !failed && !any_changes {
            println!("No changes: live state matches Git.");
        }
    }
    Ok(if failed {
        ExitCode::from(1)
    } else if any_changes {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

pub fn apply(args: LocalArgs) -> anyhow::Result<ExitCode> {
    let (config, state) = load(&args.engine)?;
    let apps = selected(&config, args.app.as_deref())?;
    let who = local_actor();
    let reports = runtime()?.block_on(async {
        let engine = Engine::start(&config, engine_options(state, false))?;
        let mut reports = Vec::new();
        for app in &apps {
            let report = engine
                .sync(app, &who)
                .await
                .with_context(|| format!("app {app}"));
            reports.push(report);
        }
        engine.shutdown().await;
        Ok::<_, anyhow::Error>(reports)
    })?;
    let mut failed = false;
    let mut ok = Vec::new();
    for report in reports {
        match report {
            Ok(report) => ok.push(report),
            Err(err) => {
                failed = true;
                eprintln!("error: {err:#}");
            }
        }
    }
    if !output::print_structured(args.output, &ok)? {
        for report in &ok {
            match &report.record {
                None => println!(
                    "app {}: {} already in sync",
                    report.app,
                    output::short(&report.revision)
                ),
                Some(record) => {
                    let cs = &record.change_set;
                    use driftless_model::Action::*;
                    println!(
                        "app {}: synced {} ({}): {} created, {} configured, {} deleted, {} unchanged",
                        report.app,
                        output::short(&record.revision),
                        record.result,
                        cs.count(Created),
                        cs.count(Configured),
                        cs.count(Deleted),
                        cs.count(Unchanged)
                    );
                }
            }
        }
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
