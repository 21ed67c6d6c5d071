//! Decrypts a SOPS file and prints it, like `sops -d FILE`:
//! `cargo run -p driftless-sops --example sops_decrypt -- FILE [KEY_FILE]`
//! (without KEY_FILE, SOPS_AGE_KEY_FILE / SOPS_AGE_KEY are used).

use std::io::Write;
use std::path::Path;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(file) = args.first() else {
        eprintln!("usage: sops_decrypt FILE [KEY_FILE]");
        std::process::exit(2);
    };
    let run = || -> Result<Vec<u8>, Box<dyn std::error::Error>> {
        let ids = driftless_sops::Identities::from_env_and_file(args.get(1).map(Path::new))?;
        let data = std::fs::read(file)?;
        let format = driftless_sops::Format::from_path(file);
        let out = driftless_sops::decrypt(&data, format, &ids, file)?;
        Ok(out.plaintext.clone())
    };
    match run() {
        Ok(bytes) => {
            let _ = std::io::stdout().write_all(&bytes);
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
