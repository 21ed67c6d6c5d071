//! `driftless-bench`: driftless and Flux side by side on the testenv cluster, fed by one Git
//! repository served over smart HTTP on loopback. Run it through `bench/run`, which builds
//! everything and starts the cluster; see bench/README.md for what each figure means.

mod cluster;
mod render;
mod tools;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use driftless_bench::gitserver::GitServer;
use driftless_bench::{Figure, ProcStat, git, today};
use serde_json::{Value, json};

use crate::cluster::{AuditLog, OBJECT_LABEL, Observer, REV_ANNOTATION};
use crate::tools::{Deployment, Driftless, Flux, Which, app_name};

/// driftless vs Flux on one real cluster and one Git repository.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Smallest sizes, one run each, short windows: keeps the suite from rotting (CI).
    #[arg(long)]
    smoke: bool,
    /// Objects in the one-app sets [default: 100,1000,5000; smoke: 30].
    #[arg(long, value_delimiter = ',')]
    objects: Option<Vec<usize>>,
    /// Object kinds of the one-app sets: `cm` (ConfigMaps) and/or `mix` (Deployments,
    /// Services and ConfigMaps in equal parts) [default: cm,mix].
    #[arg(long, value_delimiter = ',')]
    kinds: Option<Vec<String>>,
    /// App counts of the many-app sets, each app with --objects-per-app ConfigMaps
    /// [default: 100,1000; smoke: 3]. 0 skips them.
    #[arg(long, value_delimiter = ',')]
    apps: Option<Vec<usize>>,
    /// ConfigMaps per app in the many-app sets [default: 100; smoke: 5].
    #[arg(long)]
    objects_per_app: Option<usize>,
    /// Exactly these sets instead of the ones --objects/--kinds/--apps make, as
    /// KIND-OBJECTSxAPPS (objects per app), e.g. `cm-1000x1,mix-1000x1,cm-10x100`.
    #[arg(long, value_delimiter = ',')]
    sets: Option<Vec<String>>,
    /// Runs per timed figure [default: 5; smoke: 1].
    #[arg(long)]
    runs: Option<usize>,
    /// No further run of a scenario starts after it has taken this many seconds (a Flux
    /// reconcile of thousands of objects takes minutes); the results say how many ran.
    #[arg(long, default_value_t = 300)]
    scenario_budget_secs: u64,
    /// Flux's --kube-api-qps and --kube-api-burst (default: Flux's own, 50 and 300).
    #[arg(long, value_delimiter = ',', num_args = 2)]
    flux_api_qps_burst: Option<Vec<u32>>,
    /// Length of the idle window of the steady-state figures, in seconds [default: 60; smoke: 5].
    #[arg(long)]
    steady_secs: Option<u64>,
    /// Tools to run [default: driftless,flux].
    #[arg(long, value_delimiter = ',')]
    tools: Option<Vec<String>>,
    /// Flux Kustomization interval: how often Flux re-applies, and so how soon it heals
    /// drift [default: 1m; smoke: 10s].
    #[arg(long)]
    flux_kustomization_interval: Option<String>,
    /// Skip the render comparison (50 overlays, driftless vs kustomize build).
    #[arg(long)]
    no_render: bool,
    /// The driftless binary (a release build) [env: DRIFTLESS_BIN].
    #[arg(long, env = "DRIFTLESS_BIN")]
    driftless_bin: PathBuf,
    /// Where to write the results [default: bench/results/<date>.json, or
    /// bench/results/smoke-<date>.json with --smoke].
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    ConfigMaps,
    Mix,
}

struct Set {
    name: String,
    kind: Kind,
    apps: usize,
    per_app: usize,
}

impl Set {
    fn objects(&self) -> usize {
        self.apps * self.per_app
    }
    /// The ConfigMap the intruder changes: the first ConfigMap of the first app.
    fn drift_target(&self) -> (String, String) {
        let i = match self.kind {
            Kind::ConfigMaps => 0,
            Kind::Mix => 2,
        };
        (format!("a0000-cm-{i:04}"), format!("value-{i}"))
    }
}

struct Plan {
    sets: Vec<Set>,
    runs: usize,
    /// Once a scenario has run this long, it takes no further runs (at least one is made).
    budget: Duration,
    steady: Duration,
    tools: Vec<Which>,
    flux_interval: String,
    /// Flags added to both Flux controllers (API client limits when asked for).
    flux_flags: Vec<String>,
    smoke: bool,
}

/// `cm-1000x1` → one app of 1,000 ConfigMaps; `mix-300x1`; `cm-10x100` → 100 apps of 10.
fn parse_set(name: &str) -> Result<Set> {
    let bad =
        || anyhow::anyhow!("set {name:?}: expected KIND-OBJECTSxAPPS, e.g. cm-1000x1 or mix-300x1");
    let (kind, size) = name.split_once('-').ok_or_else(bad)?;
    let kind = match kind {
        "cm" => Kind::ConfigMaps,
        "mix" => Kind::Mix,
        _ => return Err(bad()),
    };
    let (per_app, apps) = size.split_once('x').ok_or_else(bad)?;
    let (per_app, apps): (usize, usize) = (
        per_app.parse().map_err(|_| bad())?,
        apps.parse().map_err(|_| bad())?,
    );
    if per_app == 0 || apps == 0 {
        return Err(bad());
    }
    Ok(Set {
        name: name.to_owned(),
        kind,
        apps,
        per_app,
    })
}

impl Plan {
    /// Run numbers for one scenario: up to `runs`, but none started after the budget.
    fn runs_within(&self, started: Instant) -> impl Iterator<Item = usize> + '_ {
        (0..self.runs).take_while(move |&run| run == 0 || started.elapsed() < self.budget)
    }
}

fn plan(args: &Args) -> Result<Plan> {
    let smoke = args.smoke;
    let objects = args.objects.clone().unwrap_or(if smoke {
        vec![30]
    } else {
        vec![100, 1000, 5000]
    });
    let kinds = args
        .kinds
        .clone()
        .unwrap_or_else(|| vec!["cm".into(), "mix".into()]);
    let apps = args
        .apps
        .clone()
        .unwrap_or(if smoke { vec![3] } else { vec![100, 1000] });
    let per_app = args.objects_per_app.unwrap_or(if smoke { 5 } else { 100 });
    let mut sets = Vec::new();
    for kind in &kinds {
        let kind = match kind.as_str() {
            "cm" => Kind::ConfigMaps,
            "mix" => Kind::Mix,
            other => bail!("unknown kind {other:?} (cm or mix)"),
        };
        for &n in objects.iter().filter(|&&n| n > 0) {
            let tag = if kind == Kind::Mix { "mix" } else { "cm" };
            sets.push(Set {
                name: format!("{tag}-{n}x1"),
                kind,
                apps: 1,
                per_app: n,
            });
        }
    }
    for &a in apps.iter().filter(|&&a| a > 0) {
        sets.push(Set {
            name: format!("cm-{per_app}x{a}"),
            kind: Kind::ConfigMaps,
            apps: a,
            per_app,
        });
    }
    if let Some(named) = &args.sets {
        sets = named.iter().map(|n| parse_set(n)).collect::<Result<_>>()?;
    }
    let mut tools = Vec::new();
    for t in args
        .tools
        .clone()
        .unwrap_or_else(|| vec!["driftless".into(), "flux".into()])
    {
        tools.push(match t.as_str() {
            "driftless" => Which::Driftless,
            "flux" => Which::Flux,
            other => bail!("unknown tool {other:?} (driftless or flux)"),
        });
    }
    Ok(Plan {
        sets,
        runs: args.runs.unwrap_or(if smoke { 1 } else { 5 }).max(1),
        budget: Duration::from_secs(args.scenario_budget_secs),
        steady: Duration::from_secs(args.steady_secs.unwrap_or(if smoke { 5 } else { 60 })),
        tools,
        flux_interval: args
            .flux_kustomization_interval
            .clone()
            .unwrap_or_else(|| if smoke { "10s".into() } else { "1m".into() }),
        flux_flags: match args.flux_api_qps_burst.as_deref() {
            Some([qps, burst]) => vec![
                format!("--kube-api-qps={qps}"),
                format!("--kube-api-burst={burst}"),
            ],
            _ => Vec::new(),
        },
        smoke,
    })
}

// ---------------------------------------------------------------------------------------
// The Git repository both tools follow

struct Repo {
    root: PathBuf,
    work: PathBuf,
    rev: usize,
}

impl Repo {
    fn new(root: &Path, set: &Set) -> Result<Repo> {
        let name = format!("{}.git", set.name);
        git(root, &["init", "-q", "--bare", "-b", "main", &name])?;
        let work = root.join(format!("{}-work", set.name));
        std::fs::create_dir_all(&work)?;
        git(&work, &["init", "-q", "-b", "main"])?;
        git(
            &work,
            &[
                "remote",
                "add",
                "origin",
                root.join(&name).to_str().context("path")?,
            ],
        )?;
        let mut repo = Repo {
            root: root.to_owned(),
            work,
            rev: 0,
        };
        repo.write(set)?;
        repo.commit()?;
        repo.push()?;
        Ok(repo)
    }

    /// Writes every object at the next revision (the revision annotation changes).
    fn write(&mut self, set: &Set) -> Result<()> {
        self.rev += 1;
        for a in 0..set.apps {
            let dir = self.work.join("apps").join(app_name(a));
            std::fs::create_dir_all(&dir)?;
            for i in 0..set.per_app {
                let (file, text) = manifest(set.kind, a, i, self.rev);
                std::fs::write(dir.join(file), text)?;
            }
        }
        Ok(())
    }

    fn commit(&self) -> Result<()> {
        git(&self.work, &["add", "-A"])?;
        git(
            &self.work,
            &["commit", "-q", "-m", &format!("revision {}", self.rev)],
        )?;
        Ok(())
    }

    fn push(&self) -> Result<()> {
        git(&self.work, &["push", "-q", "origin", "main"])?;
        Ok(())
    }

    fn remove(&self, name: &str) {
        let _ = std::fs::remove_dir_all(&self.work);
        let _ = std::fs::remove_dir_all(self.root.join(format!("{name}.git")));
    }
}

/// One object of app `a` at revision `rev`: a ConfigMap, or in a mix every third a
/// Deployment (0 replicas: no pods to schedule) and every third a headless Service.
fn manifest(kind: Kind, a: usize, i: usize, rev: usize) -> (String, String) {
    let meta = |name: &str| {
        format!(
            "metadata:\n  name: {name}\n  labels:\n    {OBJECT_LABEL}: \"true\"\n  annotations:\n    {REV_ANNOTATION}: \"{rev}\"\n"
        )
    };
    let which = if kind == Kind::Mix { i % 3 } else { 2 };
    match which {
        0 => {
            let name = format!("a{a:04}-deploy-{i:04}");
            let text = format!(
                "apiVersion: apps/v1\nkind: Deployment\n{}spec:\n  replicas: 0\n  selector:\n    matchLabels:\n      app: {name}\n  template:\n    metadata:\n      labels:\n        app: {name}\n    spec:\n      containers:\n        - name: web\n          image: registry.invalid/bench/web:1.0\n          ports:\n            - containerPort: 8080\n",
                meta(&name)
            );
            (format!("{name}.yaml"), text)
        }
        1 => {
            let name = format!("a{a:04}-svc-{i:04}");
            let text = format!(
                "apiVersion: v1\nkind: Service\n{}spec:\n  clusterIP: None\n  selector:\n    app: {name}\n  ports:\n    - name: http\n      port: 80\n      targetPort: 8080\n",
                meta(&name)
            );
            (format!("{name}.yaml"), text)
        }
        _ => {
            let name = format!("a{a:04}-cm-{i:04}");
            let text = format!(
                "apiVersion: v1\nkind: ConfigMap\n{}data:\n  key: value-{i}\n  settings.conf: |\n    listen = 8080\n    workers = 4\n    name = {name}\n",
                meta(&name)
            );
            (format!("{name}.yaml"), text)
        }
    }
}

// ---------------------------------------------------------------------------------------
// Running one tool on one set

enum Tool {
    Driftless(Driftless),
    Flux(Flux),
}

impl Tool {
    fn pids(&self) -> Vec<u32> {
        match self {
            Tool::Driftless(t) => t.pids(),
            Tool::Flux(t) => t.pids(),
        }
    }
}

/// Waits until the tool is idle: under 5 % of a core over one second, for two seconds
/// running; gives up after `limit` (Flux re-applies on its interval and may never be).
async fn settle(pids: &[u32], limit: Duration) -> Duration {
    let start = Instant::now();
    let mut quiet = 0;
    let mut last = ProcStat::read_all(pids).unwrap_or_default();
    while start.elapsed() < limit && quiet < 2 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = ProcStat::read_all(pids).unwrap_or_default();
        quiet = if now.cpu_seconds - last.cpu_seconds < 0.05 {
            quiet + 1
        } else {
            0
        };
        last = now;
    }
    start.elapsed()
}

struct Ctx {
    client: kube::Client,
    audit: AuditLog,
    git: GitServer,
    work: PathBuf,
    driftless_bin: PathBuf,
    testenv_bin: PathBuf,
    kubeconfig: PathBuf,
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn record(out: &mut BTreeMap<String, Value>, key: &str, samples: &[f64]) {
    if let Some(f) = Figure::of(samples) {
        out.insert(key.into(), f.to_json());
    }
}

async fn run_set(
    ctx: &mut Ctx,
    plan: &Plan,
    set: &Set,
    which: Which,
    last: bool,
) -> Result<BTreeMap<String, Value>> {
    let mut out = BTreeMap::new();
    let namespace = format!("bench-{}-{}", which.name(), set.name);
    cluster::create_namespace(&ctx.client, &namespace).await?;
    let mut observer = Observer::start(&ctx.client, &namespace).await?;
    let mut repo = Repo::new(&ctx.work, set)?;
    let repo_url = ctx.git.url(&format!("{}.git", set.name));
    let objects = set.objects();
    // Generous limits: a figure that times out is reported as a failure, not as a number.
    let apply_limit = Duration::from_secs(300 + objects as u64 / 5);
    let poll = "1s";
    let deployment = Deployment {
        set: &set.name,
        repo_url: &repo_url,
        namespace: &namespace,
        apps: set.apps,
        poll,
    };
    let dir = ctx.work.join(which.name());
    let mut tool = match which {
        Which::Driftless => {
            Tool::Driftless(Driftless::new(&ctx.driftless_bin, &dir, &ctx.kubeconfig)?)
        }
        Which::Flux => {
            let mut flux = Flux::new(&ctx.testenv_bin, &dir, &ctx.client, &plan.flux_interval)?;
            flux.extra_flags = plan.flux_flags.clone();
            Tool::Flux(flux)
        }
    };
    eprintln!(
        "bench: [{} {}] first sync of {objects} objects",
        which.name(),
        set.name
    );
    let start = Instant::now();
    match &mut tool {
        Tool::Driftless(t) => t.start(&deployment).await?,
        Tool::Flux(t) => t.start(&deployment).await?,
    }
    observer
        .wait_all(repo.rev, objects, apply_limit)
        .await
        .context("first sync")?;
    record(&mut out, "first_sync_s", &[secs(start.elapsed())]);
    settle(&tool.pids(), Duration::from_secs(60)).await;

    // 1. commit-to-live, polling.
    eprintln!(
        "bench: [{} {}] commit-to-live, polling every {poll}",
        which.name(),
        set.name
    );
    let mut samples = Vec::new();
    let started = Instant::now();
    for _ in plan.runs_within(started) {
        repo.write(set)?;
        repo.commit()?;
        repo.push()?;
        let took = observer
            .wait_all(repo.rev, objects, apply_limit)
            .await
            .context("commit-to-live (poll)")?;
        samples.push(secs(took));
        settle(&tool.pids(), Duration::from_secs(30)).await;
    }
    record(&mut out, "commit_to_live_poll_s", &samples);

    // 2. drift-to-healed.
    eprintln!("bench: [{} {}] drift-to-healed", which.name(), set.name);
    let (target, original) = set.drift_target();
    let heal_limit = match which {
        Which::Driftless => Duration::from_secs(60),
        Which::Flux => Duration::from_secs(600),
    };
    let mut samples = Vec::new();
    let started = Instant::now();
    for run in plan.runs_within(started) {
        let start = Instant::now();
        let drifted =
            cluster::intrude(&ctx.client, &namespace, &target, &format!("drifted-{run}")).await?;
        observer
            .wait_key(&target, &original, drifted, heal_limit)
            .await
            .context("drift-to-healed")?;
        samples.push(secs(start.elapsed()));
    }
    record(&mut out, "drift_to_healed_s", &samples);
    settle(&tool.pids(), Duration::from_secs(30)).await;

    // 3. steady state.
    eprintln!(
        "bench: [{} {}] steady state for {:?}",
        which.name(),
        set.name,
        plan.steady
    );
    let pids = tool.pids();
    let before = ProcStat::read_all(&pids).context("the tool's processes are gone")?;
    let _ = ctx.audit.take();
    let git_before = ctx.git.requests.load(std::sync::atomic::Ordering::Relaxed);
    let start = Instant::now();
    let mut rss = Vec::new();
    while start.elapsed() < plan.steady {
        tokio::time::sleep(Duration::from_secs(1)).await;
        rss.push(
            ProcStat::read_all(&pids)
                .context("the tool's processes are gone")?
                .rss_bytes as f64
                / 1e6,
        );
    }
    let after = ProcStat::read_all(&pids).context("the tool's processes are gone")?;
    let window = secs(start.elapsed());
    record(&mut out, "steady_rss_mb", &rss);
    record(
        &mut out,
        "steady_cpu_pct",
        &[100.0 * (after.cpu_seconds - before.cpu_seconds) / window],
    );
    let git_requests = ctx.git.requests.load(std::sync::atomic::Ordering::Relaxed) - git_before;
    record(
        &mut out,
        "steady_git_requests_per_min",
        &[git_requests as f64 * 60.0 / window],
    );
    if ctx.audit.enabled() {
        let api = ctx.audit.take().get(which.name()).copied().unwrap_or(0);
        record(
            &mut out,
            "steady_api_requests_per_min",
            &[api as f64 * 60.0 / window],
        );
    }

    // 4. no-op reconcile.
    eprintln!("bench: [{} {}] no-op reconcile", which.name(), set.name);
    let (mut took, mut cpu, mut api) = (Vec::new(), Vec::new(), Vec::new());
    let started = Instant::now();
    for _ in plan.runs_within(started) {
        let before = ProcStat::read_all(&pids).context("the tool's processes are gone")?;
        let _ = ctx.audit.take();
        let d = match &tool {
            Tool::Driftless(t) => t.noop().await?,
            Tool::Flux(t) => t.noop().await?,
        };
        // Let the last requests reach the audit log.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let after = ProcStat::read_all(&pids).context("the tool's processes are gone")?;
        took.push(secs(d));
        cpu.push(after.cpu_seconds - before.cpu_seconds);
        if ctx.audit.enabled() {
            api.push(ctx.audit.take().get(which.name()).copied().unwrap_or(0) as f64);
        }
    }
    record(&mut out, "noop_reconcile_s", &took);
    record(&mut out, "noop_cpu_s", &cpu);
    record(&mut out, "noop_api_requests", &api);

    // 5. commit-to-live through the webhook (driftless) or the Receiver's request (Flux),
    // with polling turned down to once an hour.
    eprintln!(
        "bench: [{} {}] commit-to-live, webhook",
        which.name(),
        set.name
    );
    let slow = Deployment {
        poll: "1h",
        ..deployment
    };
    match &mut tool {
        Tool::Driftless(t) => {
            t.stop().await;
            t.start(&slow).await?;
        }
        Tool::Flux(t) => t.poll_every("1h").await?,
    }
    settle(&tool.pids(), Duration::from_secs(60)).await;
    let mut samples = Vec::new();
    let started = Instant::now();
    for _ in plan.runs_within(started) {
        repo.write(set)?;
        repo.commit()?;
        repo.push()?;
        let start = Instant::now();
        match &tool {
            Tool::Driftless(t) => t.notify(&repo_url).await?,
            Tool::Flux(t) => t.notify().await?,
        }
        observer
            .wait_all(repo.rev, objects, apply_limit)
            .await
            .context("commit-to-live (webhook)")?;
        samples.push(secs(start.elapsed()));
        settle(&tool.pids(), Duration::from_secs(30)).await;
    }
    record(&mut out, "commit_to_live_webhook_s", &samples);

    eprintln!("bench: [{} {}] cleaning up", which.name(), set.name);
    match &mut tool {
        Tool::Driftless(t) => t.stop().await,
        Tool::Flux(t) => t.stop().await?,
    }
    drop(observer);
    // After the last run nothing follows: the cluster goes away with testenv/run, and the
    // controller-manager emptying 100,000 objects would take longer than the run.
    let wait = if last {
        Duration::ZERO
    } else {
        Duration::from_secs(1800)
    };
    cluster::delete_namespace(&ctx.client, &namespace, wait).await?;
    repo.remove(&set.name);
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// Output

/// What each figure is, its unit, and whether less is better.
const METRICS: &[(&str, &str)] = &[
    ("first_sync_s", "first sync (s)"),
    ("commit_to_live_poll_s", "commit-to-live, polling (s)"),
    ("commit_to_live_webhook_s", "commit-to-live, webhook (s)"),
    ("drift_to_healed_s", "drift-to-healed (s)"),
    ("steady_rss_mb", "steady RSS (MB)"),
    ("steady_cpu_pct", "steady CPU (% of a core)"),
    ("steady_api_requests_per_min", "steady API requests/min"),
    ("steady_git_requests_per_min", "steady Git requests/min"),
    ("noop_reconcile_s", "no-op reconcile (s)"),
    ("noop_cpu_s", "no-op reconcile CPU (s)"),
    ("noop_api_requests", "no-op reconcile API requests"),
];

fn figure_of(v: &Value) -> Option<Figure> {
    Some(Figure {
        median: v["median"].as_f64()?,
        min: v["min"].as_f64()?,
        max: v["max"].as_f64()?,
        runs: v["runs"].as_u64()? as usize,
    })
}

fn decimals(x: f64) -> usize {
    if x >= 100.0 {
        0
    } else if x >= 10.0 {
        1
    } else if x >= 1.0 {
        2
    } else {
        3
    }
}

fn ratio(d: &Value, f: &Value) -> Option<f64> {
    let (d, f) = (d["median"].as_f64()?, f["median"].as_f64()?);
    (f > 0.0).then(|| d / f)
}

fn print_table(results: &Value) {
    let mut rows = vec![[
        "set".to_string(),
        "figure".into(),
        "driftless".into(),
        "flux".into(),
        "driftless/flux".into(),
    ]];
    for set in results["sets"].as_array().into_iter().flatten() {
        let name = set["name"].as_str().unwrap_or("");
        for (key, label) in METRICS {
            let d = &set["driftless"][key];
            let f = &set["flux"][key];
            if d.is_null() && f.is_null() {
                continue;
            }
            let show = |v: &Value| {
                figure_of(v).map_or_else(|| "–".to_string(), |x| x.display(decimals(x.median)))
            };
            let r = ratio(d, f).map_or_else(|| "–".to_string(), |r| format!("{r:.3}"));
            rows.push([name.into(), (*label).into(), show(d), show(f), r]);
        }
        if let Some(err) = set["errors"].as_object() {
            for (tool, e) in err {
                rows.push([
                    name.into(),
                    format!("{tool} FAILED"),
                    e.as_str().unwrap_or("").chars().take(60).collect(),
                    String::new(),
                    String::new(),
                ]);
            }
        }
    }
    if let Some(r) = results.get("render").filter(|r| !r.is_null()) {
        let show = |v: &Value| {
            figure_of(v).map_or_else(|| "–".to_string(), |x| x.display(decimals(x.median)))
        };
        rows.push([
            "render-50".into(),
            "50 overlays, CLI (s)".into(),
            show(&r["driftless_s"]),
            format!("kustomize {}", show(&r["kustomize_s"])),
            ratio(&r["driftless_s"], &r["kustomize_s"])
                .map_or_else(|| "–".into(), |x| format!("{x:.3}")),
        ]);
    }
    let widths: Vec<usize> = (0..5)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    for (n, row) in rows.iter().enumerate() {
        let line: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(c, cell)| {
                let pad = widths[c] - cell.chars().count();
                if c >= 2 {
                    format!("{}{cell}", " ".repeat(pad))
                } else {
                    format!("{cell}{}", " ".repeat(pad))
                }
            })
            .collect();
        println!("{}", line.join("  "));
        if n == 0 {
            println!(
                "{}",
                widths
                    .iter()
                    .map(|w| "-".repeat(*w))
                    .collect::<Vec<_>>()
                    .join("  ")
            );
        }
    }
}

fn machine() -> Value {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem_gb = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1e6);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
            })
        })
        .unwrap_or_default();
    json!({"cpus": cpus, "memory_gb": (mem_gb * 10.0).round() / 10.0, "cpu_model": model})
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let plan = plan(&args)?;
    let testenv_bin = PathBuf::from(
        std::env::var_os("DRIFTLESS_TESTENV_BIN")
            .context("DRIFTLESS_TESTENV_BIN is not set: run through bench/run (or testenv/run)")?,
    );
    let kubeconfig = PathBuf::from(
        std::env::var_os("KUBECONFIG").context("KUBECONFIG is not set: run through bench/run")?,
    );
    anyhow::ensure!(
        args.driftless_bin.is_file(),
        "no driftless binary at {}",
        args.driftless_bin.display()
    );
    let work = std::env::temp_dir().join(format!("driftless-bench-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    let mut ctx = Ctx {
        client: cluster::client().await?,
        audit: AuditLog::from_env(),
        git: GitServer::start(&work)?,
        work: work.clone(),
        driftless_bin: args.driftless_bin.clone(),
        testenv_bin: testenv_bin.clone(),
        kubeconfig,
    };
    if !ctx.audit.enabled() {
        eprintln!(
            "bench: no audit log (run under testenv/run --audit-log): API request counts are left out"
        );
    }
    if plan.tools.contains(&Which::Flux) {
        Flux::new(
            &testenv_bin,
            &work.join("flux"),
            &ctx.client,
            &plan.flux_interval,
        )?
        .install_crds()
        .await?;
    }

    let out = args.out.clone().unwrap_or_else(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/results");
        root.join(if plan.smoke {
            format!("smoke-{}.json", today())
        } else {
            format!("{}.json", today())
        })
    });
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut failed = 0;
    // The render comparison first: it takes seconds, the sets take long.
    let render = if args.no_render {
        Value::Null
    } else {
        eprintln!("bench: render of 50 overlays, driftless vs kustomize build");
        match render::compare(
            &work.join("render"),
            &args.driftless_bin,
            &testenv_bin.join("kustomize"),
            plan.runs,
        )
        .await
        {
            Ok(v) => v,
            Err(e) => {
                failed += 1;
                eprintln!("bench: render FAILED: {e:#}");
                json!({"error": format!("{e:#}")})
            }
        }
    };
    let mut results = json!({
        "date": today(),
        "mode": if plan.smoke { "smoke" } else { "full" },
        "complete": false,
        "machine": machine(),
        "settings": {
            "runs": plan.runs,
            "steady_window_s": plan.steady.as_secs(),
            "git_poll_interval": "1s",
            "flux_kustomization_interval": plan.flux_interval,
            "flux_extra_flags": plan.flux_flags,
            "scenario_budget_s": plan.budget.as_secs(),
            "flux": "source-controller and kustomize-controller v1.9.6, default flags (--concurrent 2 and 4)",
            "driftless": "serve, one app per path, sync {auto, prune, selfHeal, force}",
            "audit_log": ctx.audit.enabled(),
        },
        "sets": [],
        "render": render,
    });

    let runs = plan.sets.len() * plan.tools.len();
    let mut done = 0;
    for set in &plan.sets {
        let mut entry = json!({"name": set.name, "kind": if set.kind == Kind::Mix { "mix" } else { "configmaps" }, "apps": set.apps, "objects_per_app": set.per_app, "objects": set.objects()});
        for &which in &plan.tools {
            done += 1;
            match run_set(&mut ctx, &plan, set, which, done == runs).await {
                Ok(figures) => entry[which.name()] = json!(figures),
                Err(e) => {
                    failed += 1;
                    eprintln!("bench: [{} {}] FAILED: {e:#}", which.name(), set.name);
                    entry["errors"][which.name()] = json!(format!("{e:#}"));
                }
            }
        }
        let mut ratios = serde_json::Map::new();
        for (key, _) in METRICS {
            if let Some(r) = ratio(&entry["driftless"][key], &entry["flux"][key]) {
                ratios.insert((*key).into(), json!(r));
            }
        }
        entry["ratios"] = Value::Object(ratios);
        if let Some(sets) = results["sets"].as_array_mut() {
            sets.push(entry);
        }
        // Written after every set, so a long run that is stopped keeps what it measured.
        std::fs::write(&out, serde_json::to_string_pretty(&results)? + "\n")?;
    }
    results["complete"] = json!(true);
    print_table(&results);
    std::fs::write(&out, serde_json::to_string_pretty(&results)? + "\n")?;
    println!("\nwritten to {}", out.display());
    let _ = std::fs::remove_dir_all(&work);
    if failed > 0 {
        bail!("{failed} figure set(s) failed (see above)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_names_parse_and_bad_ones_say_the_format() {
        let s = parse_set("mix-300x2").expect("valid");
        assert_eq!(
            (s.kind, s.per_app, s.apps, s.objects()),
            (Kind::Mix, 300, 2, 600)
        );
        assert_eq!(
            s.drift_target(),
            ("a0000-cm-0002".to_owned(), "value-2".to_owned())
        );
        for bad in ["cm-100", "cm-0x1", "svc-10x1", "cm-10xmany", "cm10x1"] {
            let err = parse_set(bad).err().expect("refused").to_string();
            assert!(err.contains("KIND-OBJECTSxAPPS"), "{bad}: {err}");
        }
    }

    #[test]
    fn every_object_carries_the_label_and_revision_the_observer_reads() {
        for i in 0..3 {
            let (file, text) = manifest(Kind::Mix, 7, i, 42);
            assert!(file.starts_with("a0007-"), "{file}");
            assert!(
                text.contains(&format!("{OBJECT_LABEL}: \"true\"")),
                "{text}"
            );
            assert!(
                text.contains(&format!("{REV_ANNOTATION}: \"42\"")),
                "{text}"
            );
        }
        let (_, cm) = manifest(Kind::ConfigMaps, 0, 5, 1);
        assert!(
            cm.contains("kind: ConfigMap") && cm.contains("key: value-5"),
            "{cm}"
        );
    }

    #[test]
    fn scenarios_stop_taking_runs_after_their_budget_but_make_one() {
        let plan = Plan {
            sets: Vec::new(),
            runs: 5,
            budget: Duration::ZERO,
            steady: Duration::ZERO,
            tools: Vec::new(),
            flux_interval: "1m".into(),
            flux_flags: Vec::new(),
            smoke: false,
        };
        assert_eq!(plan.runs_within(Instant::now()).count(), 1);
        let roomy = Plan {
            budget: Duration::from_secs(3600),
            ..plan
        };
        assert_eq!(roomy.runs_within(Instant::now()).count(), 5);
    }
}
