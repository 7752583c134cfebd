//! The `contact-sync` binary: everything lives in the library; see `cli::main`.

fn main() -> std::process::ExitCode {
    contact_sync::cli::main()
}
