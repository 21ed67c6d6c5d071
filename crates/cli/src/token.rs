//! `driftless token …`: make and hash API tokens for `server.tokens`.

use std::io::Read;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Subcommand;

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Read a token from stdin and print its SHA-256 (hex) for `server.tokens[].sha256`.
    Hash,
    /// Print a new random token and its SHA-256.
    New,
}

pub fn run(command: TokenCommand) -> anyhow::Result<ExitCode> {
    match command {
        TokenCommand::Hash => {
            let mut token = String::new();
            std::io::stdin()
                .take(64 * 1024)
                .read_to_string(&mut token)
                .context("reading the token from stdin")?;
            if token.trim().is_empty() {
                bail!("no token on stdin (e.g. `printf %s \"$TOKEN\" | driftless token hash`)");
            }
            println!("{}", driftless_server::hash_token(&token));
        }
        TokenCommand::New => {
            let token = driftless_server::new_token()?;
            println!("token:  {token}");
            println!("sha256: {}", driftless_server::hash_token(&token));
            eprintln!("Keep the token secret; put only the sha256 in server.tokens.");
        }
    }
    Ok(ExitCode::SUCCESS)
}
