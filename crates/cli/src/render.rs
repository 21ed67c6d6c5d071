//! `driftless render` and `driftless validate`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;
use driftless_model::Tree;
use driftless_render::{Decryption, Identities, Limits, RenderErrors, Rendered, SopsError};
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
    /// age identities to decrypt SOPS-encrypted files with (as age-keygen writes them).
    /// SOPS_AGE_KEY_FILE, SOPS_AGE_KEY and SOPS_AGE_SSH_PRIVATE_KEY_FILE are used too.
    /// The output shows decrypted values, as `sops -d` does.
    #[arg(long, value_name = "FILE")]
    age_key_file: Option<PathBuf>,
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
    /// age identities to decrypt SOPS-encrypted files with; SOPS_AGE_KEY_FILE,
    /// SOPS_AGE_KEY and SOPS_AGE_SSH_PRIVATE_KEY_FILE are used too. Values are never
    /// printed.
    #[arg(long, value_name = "FILE")]
    age_key_file: Option<PathBuf>,
}

pub fn render(args: RenderArgs) -> anyhow::Result<ExitCode> {
    let decryption = decryption(args.age_key_file.as_deref())?;
    let rendered = match &args.repo {
        Some(repo) => {
            let path = args
                .repo_path
                .clone()
                .or(args.path.clone())
                .unwrap_or_default();
            render_repo(repo, &args.reference, &path, decryption.as_ref())?
        }
        None => {
            let Some(path) = &args.path else {
                bail!("give a folder to render, or --repo URL [--ref REF] [--path P]");
            };
            match render_dir(Path::new(path), decryption.as_ref())? {
                Ok(rendered) => rendered,
                Err(errors) => return Ok(report(errors)),
            }
        }
    };
    match (args.output, &rendered.kustomize_yaml) {
        // Byte for byte what `kustomize build` prints.
        (RenderFormat::Yaml, Some(yaml)) => print!("{yaml}"),
        (RenderFormat::Yaml, None) => print!("{}", driftless_render::to_yaml(&rendered.objects)),
        (RenderFormat::Json, _) => println!("{}", driftless_render::to_json(&rendered.objects)),
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints only counts and error messages, which never hold decrypted values.
pub fn validate(args: ValidateArgs) -> anyhow::Result<ExitCode> {
    let decryption = decryption(args.age_key_file.as_deref())?;
    match render_dir(&args.path, decryption.as_ref())? {
        Ok(rendered) => {
            let how = if rendered.kustomize_yaml.is_some() {
                " (kustomization)"
            } else {
                ""
            };
            let decrypted = match rendered.secrets.paths().count() {
                0 => String::new(),
                1 => ", 1 SOPS-encrypted file decrypted".to_owned(),
                n => format!(", {n} SOPS-encrypted files decrypted"),
            };
            println!(
                "{}: valid{how}, {} objects{decrypted}",
                args.path.display(),
                rendered.objects.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(errors) => Ok(report(errors)),
    }
}

/// The identities from `--age-key-file` and the SOPS_AGE_* variables; `None` when none
/// is configured (a SOPS-encrypted file then fails the render, naming the file).
fn decryption(key_file: Option<&Path>) -> anyhow::Result<Option<Decryption>> {
    match Identities::from_env_and_file(key_file) {
        Ok(ids) => Ok(Some(Decryption::new(ids))),
        Err(SopsError::NoKeys) => match key_file {
            Some(file) => bail!(
                "--age-key-file {}: holds no age identity (expected AGE-SECRET-KEY-1… lines, as age-keygen writes)",
                file.display()
            ),
            None => Ok(None),
        },
        Err(err) => Err(err.into()),
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
fn render_dir(
    path: &Path,
    decryption: Option<&Decryption>,
) -> anyhow::Result<Result<Rendered, RenderErrors>> {
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
        .unwrap_or_else(|| Path::new("/"));
    let rel = absolute
        .strip_prefix(root)
        .expect("an ancestor is a prefix")
        .to_string_lossy()
        .into_owned();
    let tree =
        DirTree::new(root.to_path_buf()).with_context(|| format!("opening {}", root.display()))?;
    Ok(render_tree(&tree, &rel, decryption))
}

fn render_repo(
    repo: &str,
    reference: &str,
    path: &str,
    decryption: Option<&Decryption>,
) -> anyhow::Result<Rendered> {
    let cache_dir = std::env::temp_dir().join(format!("driftless-render-{}", std::process::id()));
    let cache = SourceCache::new(cache_dir.clone());
    let result = (|| {
        let handle = cache.repo(repo, Credentials::default())?;
        let revision = handle.update(reference)?;
        let tree = handle.tree(&revision)?;
        Ok::<_, driftless_source::SourceError>(render_tree(&tree, path, decryption))
    })();
    let _ = std::fs::remove_dir_all(&cache_dir);
    let shown = driftless_source::redact_url(repo);
    match result.with_context(|| format!("reading {shown} at {reference}"))? {
        Ok(rendered) => Ok(rendered),
        Err(errors) => bail!("{errors}"),
    }
}

/// A folder's rendering: a kustomization (with `kustomize build`'s exact text) or plain
/// manifests, SOPS-encrypted files decrypted.
fn render_tree(
    tree: &dyn Tree,
    path: &str,
    decryption: Option<&Decryption>,
) -> Result<Rendered, RenderErrors> {
    driftless_render::render_source_with(tree, path, &Limits::default(), decryption)
}

#[cfg(test)]
mod tests {
    //! The built `driftless` binary on folders with SOPS-encrypted files, encrypted by the
    //! real `sops` for keys from the real `age-keygen` (DRIFTLESS_TESTENV_BIN).

    use std::path::{Path, PathBuf};
    use std::process::{Command, Output};

    fn tool(name: &str) -> PathBuf {
        let dir = std::env::var_os("DRIFTLESS_TESTENV_BIN")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .expect("set DRIFTLESS_TESTENV_BIN=$(testenv/build | tail -n1): this test runs the real sops and age-keygen");
        dir.join(name)
    }

    /// The `driftless` binary cargo built next to this test (`cargo test -p driftless`
    /// builds it, since the package has integration tests).
    fn driftless() -> PathBuf {
        let exe = std::env::current_exe().expect("test executable");
        let bin = exe
            .parent()
            .and_then(Path::parent)
            .expect("target/<profile>/deps")
            .join("driftless");
        assert!(
            bin.is_file(),
            "{} not built; run `cargo test -p driftless`",
            bin.display()
        );
        bin
    }

    fn run(cmd: &mut Command) -> Output {
        for var in [
            "SOPS_AGE_KEY",
            "SOPS_AGE_KEY_FILE",
            "SOPS_AGE_SSH_PRIVATE_KEY_FILE",
        ] {
            cmd.env_remove(var);
        }
        cmd.output().expect("run")
    }

    fn text(out: &Output) -> String {
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }

    /// Values long enough to be found by grep if they leaked, in plain and base64 form.
    const VALUES: [&str; 6] = [
        "leaky-password-8d1f",
        "bGVha3ktcGFzc3dvcmQtOGQxZg==",
        "user-name-secret-5e2",
        "env-file-secret-7a3c",
        "ZW52LWZpbGUtc2VjcmV0LTdhM2M=",
        "second-env-secret-19b",
    ];

    fn encrypt(dir: &Path, rel: &str, plain: &str, recipient: &str) {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, plain).expect("write");
        let out = run(Command::new(tool("sops"))
            .current_dir(dir)
            .env("HOME", dir)
            .args(["encrypt", "--in-place", "--age", recipient])
            .arg(&path));
        assert!(out.status.success(), "sops encrypt: {}", text(&out));
    }

    #[test]
    fn validate_prints_no_value_and_no_log_line_holds_one() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path();
        let key = dir.join("key.txt");
        let out = run(Command::new(tool("age-keygen")).arg("-o").arg(&key));
        assert!(out.status.success(), "{}", text(&out));
        let recipient = std::fs::read_to_string(&key)
            .expect("key")
            .lines()
            .find_map(|l| l.strip_prefix("# public key: ").map(str::to_owned))
            .expect("public key");
        encrypt(
            dir,
            "app/secret.yaml",
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\ndata:\n  password: bGVha3ktcGFzc3dvcmQtOGQxZg==\nstringData:\n  user: user-name-secret-5e2\n",
            &recipient,
        );
        std::fs::write(
            dir.join("app/configmap.yaml"),
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  a: b\n",
        )
        .expect("write");
        std::fs::create_dir_all(dir.join("k")).expect("mkdir");
        std::fs::write(
            dir.join("k/kustomization.yaml"),
            "resources:\n- secret.yaml\nsecretGenerator:\n- name: gen\n  envs:\n  - db.env\n",
        )
        .expect("write");
        std::fs::copy(dir.join("app/secret.yaml"), dir.join("k/secret.yaml")).expect("copy");
        encrypt(
            dir,
            "k/db.env",
            "TOKEN=env-file-secret-7a3c\nOTHER=second-env-secret-19b\n",
            &recipient,
        );

        for folder in ["app", "k"] {
            let path = dir.join(folder);
            // validate, with the key from the flag and from the environment.
            for via_env in [false, true] {
                let mut cmd = Command::new(driftless());
                cmd.arg("validate").arg(&path).env("RUST_LOG", "trace");
                if via_env {
                    // run() clears the SOPS variables; set the key file after it did.
                    for var in ["SOPS_AGE_KEY", "SOPS_AGE_SSH_PRIVATE_KEY_FILE"] {
                        cmd.env_remove(var);
                    }
                    cmd.env("SOPS_AGE_KEY_FILE", &key);
                } else {
                    cmd.arg("--age-key-file").arg(&key);
                }
                let out = if via_env {
                    cmd.output().expect("run")
                } else {
                    run(&mut cmd)
                };
                let all = text(&out);
                assert!(out.status.success(), "{all}");
                assert!(all.contains(": valid"), "{all}");
                assert!(all.contains("SOPS-encrypted file"), "{all}");
                for value in VALUES {
                    assert!(
                        !all.contains(value),
                        "validate {folder} leaked {value}:\n{all}"
                    );
                }
            }
            // render shows the values on stdout (that is its job), never in the logs.
            let out = run(Command::new(driftless())
                .args(["render", "-o", "json", "--age-key-file"])
                .arg(&key)
                .arg(&path)
                .env("RUST_LOG", "trace"));
            let stdout = String::from_utf8_lossy(&out.stdout);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "{stderr}");
            assert!(stdout.contains("user-name-secret-5e2"), "{stdout}");
            assert!(!stdout.contains("\"sops\""), "{stdout}");
            for value in VALUES {
                assert!(
                    !stderr.contains(value),
                    "render {folder} logged {value}:\n{stderr}"
                );
            }
        }

        // Without any key: the error names the file and shows nothing of it.
        let out = run(Command::new(driftless())
            .arg("validate")
            .arg(dir.join("app"))
            .env("RUST_LOG", "trace"));
        let all = text(&out);
        assert_eq!(out.status.code(), Some(1), "{all}");
        assert!(
            all.contains("app/secret.yaml: SOPS-encrypted but no age key configured; set decryption.sops.ageKeyFile or SOPS_AGE_KEY_FILE"),
            "{all}"
        );
        for value in VALUES {
            assert!(!all.contains(value), "{all}");
        }
    }
}
