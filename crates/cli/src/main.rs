//! The `driftless` binary: parses the command line and maps errors to exit codes.
//! All behaviour lives in the library crates.

fn main() {
    println!("driftless {}", env!("CARGO_PKG_VERSION"));
}
