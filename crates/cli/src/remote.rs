//! `driftless app …`: a thin client of a running server's HTTP API.

use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::output::{self, Format};

#[derive(Args, Clone)]
pub struct ServerArgs {
    /// The driftless server to talk to.
    #[arg(
        long,
        global = true,
        env = "DRIFTLESS_SERVER",
        default_value = "http://127.0.0.1:7420"
    )]
    server: String,
    /// Output format.
    #[arg(short, long, global = true, value_enum, default_value_t = Format::Table)]
    output: Format,
}

#[derive(Subcommand)]
pub enum AppCommand {
    /// List apps with sync status, health and revision.
    List(ServerArgs),
    /// Show one app: status, revision, error, objects.
    Get(NameArgs),
    /// Show what a sync would change now (live vs Git).
    Diff(NameArgs),
    /// Sync now to the app's current revision, even with auto-sync off.
    Sync(NameArgs),
    /// Ask the app to look at its Git source now (what a webhook does).
    Refresh(NameArgs),
    /// List past syncs: revision, author, message, trigger, result.
    History(HistoryArgs),
    /// Pin the app to an earlier revision and sync it; auto-sync pauses until `resume`.
    Rollback(RollbackArgs),
    /// Stop automatic syncs and self-heal for the app.
    Suspend(NameArgs),
    /// Resume automatic syncs, clearing a suspension or rollback pin.
    Resume(NameArgs),
}

#[derive(Args)]
pub struct NameArgs {
    /// The app's name.
    name: String,
    #[command(flatten)]
    server: ServerArgs,
}

#[derive(Args)]
pub struct HistoryArgs {
    name: String,
    /// How many syncs to show, newest first.
    #[arg(long, default_value_t = 20)]
    limit: usize,
    #[command(flatten)]
    server: ServerArgs,
}

#[derive(Args)]
pub struct RollbackArgs {
    name: String,
    /// Commit id (full or short), tag or branch to go back to.
    revision: String,
    #[command(flatten)]
    server: ServerArgs,
}

struct Client {
    base: String,
    http: reqwest::blocking::Client,
}

impl Client {
    fn new(server: &ServerArgs) -> anyhow::Result<Client> {
        let http = reqwest::blocking::Client::builder()
            .timeout(std::time::Duration::from_secs(300))
            .build()
            .context("creating the HTTP client")?;
        Ok(Client {
            base: server.server.trim_end_matches('/').to_owned(),
            http,
        })
    }

    fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        self.send(self.http.get(format!("{}{path}", self.base)))
    }

    fn post<T: DeserializeOwned>(&self, path: &str, body: Option<Value>) -> anyhow::Result<T> {
        let mut request = self.http.post(format!("{}{path}", self.base)).header(
            driftless_server::ACTOR_HEADER,
            std::env::var("USER").unwrap_or_default(),
        );
        if let Some(body) = body {
            request = request.json(&body);
        }
        self.send(request)
    }

    fn send<T: DeserializeOwned>(
        &self,
        request: reqwest::blocking::RequestBuilder,
    ) -> anyhow::Result<T> {
        let response = request.send().map_err(|err| {
            anyhow::anyhow!(
                "cannot reach the driftless server at {}: {err}\nIs `driftless serve` (or `driftless quickstart`) running? Set --server or DRIFTLESS_SERVER.",
                self.base
            )
        })?;
        let status = response.status();
        let text = response.text().context("reading the server's answer")?;
        if !status.is_success() {
            let detail = serde_json::from_str::<driftless_server::ApiError>(&text)
                .map(|e| e.detail.unwrap_or(e.error))
                .unwrap_or(text);
            bail!("{detail}");
        }
        if text.is_empty() {
            return serde_json::from_str("null").context("empty answer");
        }
        serde_json::from_str(&text).context("decoding the server's answer")
    }
}

fn s<'a>(value: &'a Value, key: &str) -> &'a str {
    value.get(key).and_then(Value::as_str).unwrap_or("")
}

pub fn run(command: AppCommand) -> anyhow::Result<ExitCode> {
    match command {
        AppCommand::List(server) => {
            let client = Client::new(&server)?;
            let apps: Vec<Value> = client.get("/api/v1/apps")?;
            if !output::print_structured(server.output, &apps)? {
                let rows: Vec<Vec<String>> = apps.iter().map(app_row).collect();
                output::print_table(
                    &["NAME", "SYNC", "HEALTH", "REVISION", "TARGET", "MESSAGE"],
                    &rows,
                );
            }
        }
        AppCommand::Get(args) => {
            let client = Client::new(&args.server)?;
            let app: Value = client.get(&format!("/api/v1/apps/{}", args.name))?;
            if !output::print_structured(args.server.output, &app)? {
                print_app(&app);
            }
        }
        AppCommand::Diff(args) => {
            let client = Client::new(&args.server)?;
            let plan: Value = client.get(&format!("/api/v1/apps/{}/diff", args.name))?;
            if !output::print_structured(args.server.output, &plan)? {
                let color = output::color();
                let tasks = plan
                    .get("tasks")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                let mut changed = 0;
                for task in &tasks {
                    if s(task, "op") == "unchanged" {
                        continue;
                    }
                    changed += 1;
                    println!("{} {}", s(task, "op"), id_text(task.get("id")));
                    if let Some(diff) = task.get("diff").and_then(Value::as_str) {
                        print!("{}", output::paint_diff(diff, color));
                    }
                }
                if changed == 0 {
                    println!("No changes: live state matches Git.");
                }
            }
        }
        AppCommand::Sync(args) => {
            let client = Client::new(&args.server)?;
            let report: Value = client.post(&format!("/api/v1/apps/{}/sync", args.name), None)?;
            if !output::print_structured(args.server.output, &report)? {
                print_report(&args.name, &report);
            }
        }
        AppCommand::Refresh(args) => {
            let client = Client::new(&args.server)?;
            let _: Value = client.post(&format!("/api/v1/apps/{}/refresh", args.name), None)?;
            println!("app {}: refresh requested", args.name);
        }
        AppCommand::History(args) => {
            let client = Client::new(&args.server)?;
            let history: Vec<Value> = client.get(&format!(
                "/api/v1/apps/{}/history?limit={}",
                args.name, args.limit
            ))?;
            if !output::print_structured(args.server.output, &history)? {
                let rows: Vec<Vec<String>> = history.iter().map(history_row).collect();
                output::print_table(
                    &[
                        "ID",
                        "STARTED (UTC)",
                        "REVISION",
                        "RESULT",
                        "TRIGGER",
                        "BY",
                        "CHANGES",
                        "AUTHOR",
                        "MESSAGE",
                    ],
                    &rows,
                );
            }
        }
        AppCommand::Rollback(args) => {
            let client = Client::new(&args.server)?;
            let report: Value = client.post(
                &format!("/api/v1/apps/{}/rollback", args.name),
                Some(serde_json::json!({ "revision": args.revision })),
            )?;
            if !output::print_structured(args.server.output, &report)? {
                print_report(&args.name, &report);
                println!(
                    "Auto-sync is paused for {0}; run `driftless app resume {0}` to follow Git again.",
                    args.name
                );
            }
        }
        AppCommand::Suspend(args) => toggle(&args, "suspend")?,
        AppCommand::Resume(args) => toggle(&args, "resume")?,
    }
    Ok(ExitCode::SUCCESS)
}

fn toggle(args: &NameArgs, action: &str) -> anyhow::Result<()> {
    let client = Client::new(&args.server)?;
    let app: Value = client.post(&format!("/api/v1/apps/{}/{action}", args.name), None)?;
    if !output::print_structured(args.server.output, &app)? {
        let state = if app
            .get("suspended")
            .and_then(Value::as_bool)
            .unwrap_or(false)
        {
            "suspended"
        } else {
            "following Git"
        };
        println!("app {}: {state}", args.name);
    }
    Ok(())
}

fn id_text(id: Option<&Value>) -> String {
    let Some(id) = id else {
        return String::new();
    };
    let (group, kind, ns, name) = (
        s(id, "group"),
        s(id, "kind"),
        s(id, "namespace"),
        s(id, "name"),
    );
    if group.is_empty() && kind == "File" {
        return name.to_owned();
    }
    let kind = if group.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}.{group}")
    };
    if ns.is_empty() {
        format!("{kind}/{name}")
    } else {
        format!("{ns}/{kind}/{name}")
    }
}

fn app_row(app: &Value) -> Vec<String> {
    let mut sync = s(app, "syncStatus").to_owned();
    if app
        .get("suspended")
        .and_then(Value::as_bool)
        .unwrap_or(false)
    {
        sync.push_str(" (suspended)");
    } else if app.get("pinnedRevision").is_some_and(|v| !v.is_null()) {
        sync.push_str(" (pinned)");
    }
    let message = match app.get("error").and_then(Value::as_str) {
        Some(err) => err.lines().next().unwrap_or("").to_owned(),
        None => app
            .get("commit")
            .map(|c| s(c, "subject").to_owned())
            .unwrap_or_default(),
    };
    vec![
        s(app, "name").to_owned(),
        sync,
        s(app, "health").to_owned(),
        output::short(app.get("revision").and_then(Value::as_str).unwrap_or("-")).to_owned(),
        s(app, "target").to_owned(),
        message,
    ]
}

fn print_app(app: &Value) {
    println!("Name:       {}", s(app, "name"));
    if let Some(source) = app.get("source") {
        println!(
            "Source:     {} ref {} path /{}",
            s(source, "repo"),
            s(source, "ref"),
            s(source, "path")
        );
    }
    println!("Target:     {}", s(app, "target"));
    println!("Sync:       {}", s(app, "syncStatus"));
    println!("Health:     {}", s(app, "health"));
    if let Some(commit) = app.get("commit").filter(|c| !c.is_null()) {
        println!(
            "Revision:   {}  {}  ({} <{}>)",
            output::short(s(commit, "revision")),
            s(commit, "subject"),
            s(commit, "author"),
            s(commit, "email")
        );
    }
    if let Some(applied) = app.get("appliedRevision").and_then(Value::as_str) {
        println!("Applied:    {}", output::short(applied));
    }
    if app
        .get("suspended")
        .and_then(Value::as_bool)
        .unwrap_or(false)
    {
        println!(
            "Suspended:  yes (run `driftless app resume {}`)",
            s(app, "name")
        );
    }
    if let Some(pin) = app.get("pinnedRevision").and_then(Value::as_str) {
        println!(
            "Pinned:     {} (rollback; run `driftless app resume {}` to follow Git)",
            output::short(pin),
            s(app, "name")
        );
    }
    if let Some(error) = app.get("error").and_then(Value::as_str) {
        println!("Error:");
        for line in error.lines() {
            println!("  {line}");
        }
    }
    let objects = app
        .get("objects")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if !objects.is_empty() {
        println!();
        let rows: Vec<Vec<String>> = objects
            .iter()
            .map(|o| {
                vec![
                    id_text(o.get("id")),
                    s(o, "status").to_owned(),
                    s(o, "health").to_owned(),
                    s(o, "message").to_owned(),
                ]
            })
            .collect();
        output::print_table(&["OBJECT", "SYNC", "HEALTH", "MESSAGE"], &rows);
    }
}

fn history_row(record: &Value) -> Vec<String> {
    let changes = record
        .get("changeSet")
        .and_then(|c| c.get("changes"))
        .and_then(Value::as_array)
        .map(|changes| {
            let count = |action: &str| changes.iter().filter(|c| s(c, "action") == action).count();
            format!(
                "+{} ~{} -{}",
                count("created"),
                count("configured"),
                count("deleted")
            )
        })
        .unwrap_or_default();
    let commit = record.get("commit").filter(|c| !c.is_null());
    vec![
        record
            .get("id")
            .map(ToString::to_string)
            .unwrap_or_default(),
        record
            .get("startedAt")
            .and_then(Value::as_i64)
            .map(output::time_ms)
            .unwrap_or_default(),
        output::short(s(record, "revision")).to_owned(),
        s(record, "result").to_owned(),
        s(record, "trigger").to_owned(),
        record
            .get("requestedBy")
            .and_then(Value::as_str)
            .unwrap_or("-")
            .to_owned(),
        changes,
        commit
            .map(|c| s(c, "author").to_owned())
            .unwrap_or_default(),
        commit
            .map(|c| s(c, "subject").to_owned())
            .unwrap_or_default(),
    ]
}

fn print_report(name: &str, report: &Value) {
    match report.get("record").filter(|r| !r.is_null()) {
        None => println!(
            "app {name}: already in sync at {}",
            output::short(s(report, "revision"))
        ),
        Some(record) => {
            let row = history_row(record);
            println!(
                "app {name}: synced {} ({}): {}",
                output::short(s(record, "revision")),
                s(record, "result"),
                row[6]
            );
        }
    }
}
