//! The `raftkv` binary: `raftkv node ...` runs one node, `raftkv cluster ...` a local cluster.

use std::process::ExitCode;

use raftkv::cli::{self, Cli};
use slog::Drain;

/// Every allocation of the server process: mimalloc's per-thread free lists serve the small
/// buffers a request passes through (commands, entries, replies, frames) without glibc's
/// consolidation passes, which took about a quarter of a loaded leader's CPU.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = match cli::parse(std::env::args_os().skip(1)) {
        Ok(cli) => cli,
        // `--help` prints to stdout and exits 0; a bad option prints to stderr and exits 2.
        Err(e) => e.exit(),
    };
    match cli {
        Cli::Node(node) => {
            let decorator = slog_term::PlainSyncDecorator::new(std::io::stderr());
            let drain = slog_term::FullFormat::new(decorator).build().fuse();
            let drain = slog::LevelFilter::new(drain, node.log_level).fuse();
            let logger = slog::Logger::root(drain, slog::o!("node" => node.config.id));
            if node.exit_on_stdin_close {
                std::thread::spawn(|| {
                    // Ends at end of file (or on an error): the parent is gone.
                    let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
                    std::process::exit(0);
                });
            }
            match raftkv::run_node(node.config, logger.clone()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    raftkv::node::log_fatal(&logger, &e);
                    eprintln!("raftkv: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Cli::Cluster(cluster) => match raftkv::cluster::run(&cluster) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("raftkv cluster: {e}");
                ExitCode::FAILURE
            }
        },
    }
}
