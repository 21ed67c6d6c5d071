//! goyaml's scalar facts on arbitrary text.

use driftless_fuzz::{fuzz, input};

#[test]
fn goyaml_never_panics() {
    fuzz(
        "goyaml",
        |rng| {
            let mut s = input::yaml_scalar(rng).into_bytes();
            input::mutate(rng, &mut s);
            String::from_utf8_lossy(&s).into_owned()
        },
        Clone::clone,
        |s| {
            let _ = driftless_goyaml::is_yaml_float(s);
            let _ = driftless_goyaml::is_base60_float(s);
            Ok(())
        },
    );
}
