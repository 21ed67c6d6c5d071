//! The SOPS readers (YAML, JSON, dotenv, binary), metadata, decryption walk, MAC check
//! and printers on generated files and damaged real `sops`-encrypted seeds.

use driftless_fuzz::{fuzz, input};
use driftless_sops::{Format, Identities, Limits, decrypt_with, is_encrypted_with};

const KEY: &str = "AGE-SECRET-KEY-13PZ06RVPNJY9QTJ4Z7HM50ZHY0Q2HRF6MXLSF7D44DKCZGWRZ3USXN9Q52";

const FORMATS: [Format; 4] = [Format::Yaml, Format::Json, Format::Dotenv, Format::Binary];

fn input(rng: &mut fastrand::Rng) -> Vec<u8> {
    match rng.u8(..6) {
        0 => input::yaml_file(rng).into_bytes(),
        1 => input::json_file(rng).into_bytes(),
        2 => input::dotenv_file(rng).into_bytes(),
        3 => input::seed_file(rng, None).1,
        _ => {
            // Real encrypted files: sometimes intact (the full walk and MAC), mostly
            // damaged.
            let mut d = input::sops_seed(rng);
            if rng.u8(..4) != 0 {
                input::mutate(rng, &mut d);
            }
            d
        }
    }
}

#[test]
fn sops_never_panics_overflows_or_hangs() {
    fuzz(
        "sops",
        input,
        |d| String::from_utf8_lossy(d).into_owned(),
        |data| {
            let ids = Identities::parse(KEY).map_err(|e| e.to_string())?;
            let limits = Limits::default();
            // Decrypted in some format, or the last format's error.
            let mut outcome = Err(String::new());
            for f in FORMATS {
                let _ = is_encrypted_with(data, f, &limits);
                let r = decrypt_with(data, f, &ids, "fuzz", &limits)
                    .map(|_| ())
                    .map_err(|e| e.to_string());
                if outcome.is_err() {
                    outcome = r;
                }
            }
            outcome
        },
    );
}
