//! `nono`: argv in, exit status out; everything else lives in the library.

fn main() {
    std::process::exit(nono::cli::main());
}
