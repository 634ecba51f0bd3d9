//! `switchyard`: the hub server and its admin command line.

mod cli;

use clap::Parser;

fn main() -> std::process::ExitCode {
    // One process-wide crypto provider, before anything builds a TLS config.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args = cli::Cli::parse();
    if let Some(code) = cli::render_worker(&args) {
        return code;
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::run(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            // An exit without a message (`app diff` found differences) is
            // an answer, not an error.
            let message = format!("{error:#}");
            if !message.is_empty() {
                eprintln!("error: {message}");
            }
            // Documented per command in docs/OPERATIONS.md, "Exit codes".
            std::process::ExitCode::from(cli::code_of(&error))
        }
    }
}
