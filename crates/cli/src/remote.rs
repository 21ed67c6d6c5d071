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
    /// API bearer token (needed when the server has `server.tokens`).
    #[arg(long, global = true, env = "DRIFTLESS_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

#[derive(Subcommand)]
pub enum AppCommand {
    /// List apps with sync status, health and revision.
    List(ServerArgs),
    /// Show one app: status, revision, error, objects.
    Get(NameArgs),
    /// Show what a sync would change (live vs Git), as of the app's last check; --refresh plans now.
    Diff(DiffArgs),
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
    /// Print events as they happen (one line each), of one app or all; Ctrl-C stops.
    Watch(WatchArgs),
}

#[derive(Args)]
pub struct WatchArgs {
    /// Only this app's events.
    name: Option<String>,
    #[command(flatten)]
    server: ServerArgs,
}

#[derive(Args)]
pub struct NameArgs {
    /// The app's name.
    name: String,
    #[command(flatten)]
    server: ServerArgs,
}

#[derive(Args)]
pub struct DiffArgs {
    /// The app's name.
    name: String,
    /// Plan now against Git and the target (an operator action) instead of showing the
    /// plan of the app's last check.
    #[arg(long)]
    refresh: bool,
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
    token: Option<String>,
    http: reqwest::blocking::Client,
}

impl Client {
    fn new(server: &ServerArgs) -> anyhow::Result<Client> {
        Client::with_timeout(server, Some(std::time::Duration::from_secs(300)))
    }

    fn with_timeout(
        server: &ServerArgs,
        timeout: Option<std::time::Duration>,
    ) -> anyhow::Result<Client> {
        let http = reqwest::blocking::Client::builder()
            .timeout(timeout)
            .build()
            .context("creating the HTTP client")?;
        Ok(Client {
            base: server.server.trim_end_matches('/').to_owned(),
            token: server.token.clone().filter(|t| !t.trim().is_empty()),
            http,
        })
    }

    fn authorized(
        &self,
        request: reqwest::blocking::RequestBuilder,
    ) -> reqwest::blocking::RequestBuilder {
        match &self.token {
            Some(token) => request.bearer_auth(token.trim()),
            None => request,
        }
    }

    fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        self.send(self.authorized(self.http.get(format!("{}{path}", self.base))))
    }

    fn post<T: DeserializeOwned>(&self, path: &str, body: Option<Value>) -> anyhow::Result<T> {
        let request = self.authorized(self.http.post(format!("{}{path}", self.base)));
        // The request header marks the call as deliberate (the server refuses
        // state-changing calls a foreign web page could forge).
        let mut request = request
            .header(
                driftless_server::ACTOR_HEADER,
                std::env::var("USER").unwrap_or_default(),
            )
            .header(driftless_server::REQUEST_HEADER, "1");
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
            if status == reqwest::StatusCode::UNAUTHORIZED && self.token.is_none() {
                bail!("{detail}\nThe server needs an API token: set --token or DRIFTLESS_TOKEN.");
            }
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
            let route = format!("/api/v1/apps/{}/diff", args.name);
            let plan: Value = if args.refresh {
                client.post(&route, None)?
            } else {
                client.get(&route)?
            };
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
        AppCommand::Watch(args) => watch(&args)?,
        AppCommand::Suspend(args) => toggle(&args, "suspend")?,
        AppCommand::Resume(args) => toggle(&args, "resume")?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Follows `GET /api/v1/events` as Server-Sent Events, reconnecting with
/// `Last-Event-ID` when the connection drops after having worked.
fn watch(args: &WatchArgs) -> anyhow::Result<()> {
    use std::io::{BufRead, Write};
    let client = Client::with_timeout(&args.server, None)?;
    let mut path = "/api/v1/events".to_owned();
    if let Some(name) = &args.name {
        path.push_str(&format!("?app={name}"));
    }
    let mut last_id: Option<String> = None;
    let mut failures = 0;
    loop {
        let mut request = client
            .authorized(client.http.get(format!("{}{path}", client.base)))
            .header("accept", "text/event-stream");
        if let Some(id) = &last_id {
            request = request.header("last-event-id", id.as_str());
        }
        let response = match request.send() {
            Ok(response) => response,
            Err(err) if last_id.is_some() && failures < 30 => {
                failures += 1;
                eprintln!("connection lost ({err}); reconnecting");
                std::thread::sleep(std::time::Duration::from_secs(1));
                continue;
            }
            Err(err) => bail!(
                "cannot reach the driftless server at {}: {err}\nIs `driftless serve` running? Set --server or DRIFTLESS_SERVER.",
                client.base
            ),
        };
        let status = response.status();
        if !status.is_success() {
            let text = response.text().unwrap_or_default();
            let detail = serde_json::from_str::<driftless_server::ApiError>(&text)
                .map(|e| e.detail.unwrap_or(e.error))
                .unwrap_or(text);
            bail!("{detail}");
        }
        last_id.get_or_insert_with(String::new);
        failures = 0;
        let mut data = String::new();
        let stdout = std::io::stdout();
        for line in std::io::BufReader::new(response).lines() {
            let Ok(line) = line else { break };
            if let Some(id) = line.strip_prefix("id:") {
                last_id = Some(id.trim().to_owned());
            } else if let Some(chunk) = line.strip_prefix("data:") {
                data.push_str(chunk.strip_prefix(' ').unwrap_or(chunk));
            } else if line.is_empty() && !data.is_empty() {
                let event: Value = serde_json::from_str(&data).unwrap_or(Value::Null);
                let mut out = stdout.lock();
                if matches!(args.server.output, Format::Table) {
                    let _ = writeln!(
                        out,
                        "{}  {:<12} {:<15} {:<7} {}",
                        event
                            .get("at")
                            .and_then(Value::as_i64)
                            .map(output::time_ms)
                            .unwrap_or_default(),
                        event.get("app").and_then(Value::as_str).unwrap_or("-"),
                        s(&event, "kind"),
                        s(&event, "severity"),
                        s(&event, "message")
                    );
                } else {
                    let _ = writeln!(out, "{data}");
                }
                let _ = out.flush();
                data.clear();
            }
        }
        eprintln!("the event stream ended; reconnecting");
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
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
        if let Some(at) = app.get("nextRetryAt").and_then(Value::as_i64) {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
            let secs = ((at - now).max(0) + 999) / 1000;
            println!("Retrying:   in {secs}s (failures back off, doubling up to 5 min)");
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
    // History lists carry counts (`changes`); a sync report carries the change set.
    let counted = record.get("changes").filter(|c| c.is_object()).map(|c| {
        let n = |key: &str| c.get(key).and_then(Value::as_u64).unwrap_or(0);
        format!("+{} ~{} -{}", n("created"), n("configured"), n("deleted"))
    });
    let changes = counted
        .or_else(|| {
            record
                .get("changeSet")
                .and_then(|c| c.get("changes"))
                .and_then(Value::as_array)
                .map(|changes| {
                    let count =
                        |action: &str| changes.iter().filter(|c| s(c, "action") == action).count();
                    format!(
                        "+{} ~{} -{}",
                        count("created"),
                        count("configured"),
                        count("deleted")
                    )
                })
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
