//! `localbuild serve`: the local CodeBuild / CloudWatch Logs endpoint (`localbuild-server`).
//!
//! Opens the history, finalises builds whose process died (and removes their containers),
//! connects Docker, binds, prints the address and the `AWS_ENDPOINT_URL` to use, and serves
//! until Ctrl-C or SIGTERM; then it stops the running builds, waits for them to be recorded
//! STOPPED and exits 0.

use super::{ServeArgs, exit};
use localbuild_docker::Docker;
use localbuild_server::{Config, Server};
use localbuild_store::HistoryStore;
use std::io::Write;
use std::sync::Arc;

fn usage_error(message: &str) -> u8 {
    eprintln!("error: {message}");
    exit::USAGE
}

pub fn run(args: &ServeArgs) -> u8 {
    let listen: std::net::SocketAddr = match args.listen.parse() {
        Ok(a) => a,
        Err(_) => {
            return usage_error(&format!(
                "--listen: expected ADDRESS:PORT (e.g. 127.0.0.1:{}), found {:?}",
                localbuild_server::DEFAULT_PORT,
                args.listen
            ));
        }
    };
    let credentials = match &args.credentials {
        None => None,
        Some(path) => {
            let parsed = std::fs::read_to_string(path)
                .map_err(|e| e.to_string())
                .and_then(|t| localbuild_sigv4::Credentials::parse(&t).map_err(|e| e.to_string()));
            match parsed {
                Ok(c) => Some(c),
                Err(e) => return usage_error(&format!("--credentials: {}: {e}", path.display())),
            }
        }
    };
    let mut allowed_hosts = Vec::new();
    for name in &args.allowed_hosts {
        match localbuild_server::guard::allowed_host_name(name) {
            Ok(n) => allowed_hosts.push(n),
            Err(e) => return usage_error(&format!("--allowed-host: {e}")),
        }
    }
    if credentials.is_none() && !listen.ip().is_loopback() {
        return usage_error(&format!(
            "--listen {listen} is reachable from other machines: give --credentials FILE so that only signed requests are accepted, or listen on 127.0.0.1"
        ));
    }
    let secrets = match &args.secrets_file {
        None => Default::default(),
        Some(path) => {
            let parsed = std::fs::read_to_string(path)
                .map_err(|e| e.to_string())
                .and_then(|t| localbuild_engine::secrets::SecretsFile::parse(&t));
            match parsed {
                Ok(s) => s,
                Err(e) => {
                    return usage_error(&format!("--secrets-file: {}: {e}", path.display()));
                }
            }
        }
    };
    let max = args.max_concurrent_builds.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    if max == 0 {
        return usage_error("--max-concurrent-builds must be at least 1");
    }
    let region = ["AWS_REGION", "AWS_DEFAULT_REGION"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
        .unwrap_or_else(|| "us-east-1".to_owned());
    let runtime = match super::runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    runtime.block_on(async move {
        let root = super::run::store_root();
        let history = match HistoryStore::open(&root) {
            Ok(h) => h,
            Err(e) => {
                eprintln!(
                    "error: cannot open the build history under {}: {e}",
                    root.display()
                );
                return exit::FAULT;
            }
        };
        let docker = match Docker::connect().await {
            // What this server creates names its process, so `localbuild gc` leaves it alone.
            Ok(d) => d.owned_by(history.owner_label()),
            Err(e) => {
                eprintln!("error: {e}");
                return exit::FAULT;
            }
        };
        match history.recover() {
            Ok(ids) => {
                for id in ids {
                    let _ = docker.remove_build_resources(Some(&id)).await;
                }
            }
            Err(e) => eprintln!("warning: the build history could not be checked: {e}"),
        }
        let config = Config {
            listen,
            credentials,
            allowed_hosts,
            secrets,
            max_concurrent_builds: max,
            region,
            runtime: Arc::new(docker),
            roots: localbuild_sources::Roots {
                git_root: args.git_root.clone().unwrap_or_else(|| root.join("git")),
                s3_root: root.join("s3"),
            },
            history,
        };
        let server = match Server::bind(config).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: {e}");
                return exit::FAULT;
            }
        };
        let addr = server.addr();
        {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "localbuild serve: listening on http://{addr}");
            let _ = writeln!(out, "export AWS_ENDPOINT_URL=http://{addr}");
            let _ = out.flush();
        }
        match server.run(shutdown_signal()).await {
            Ok(()) => {
                println!("localbuild serve: stopped");
                exit::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                exit::FAULT
            }
        }
    })
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {},
                    _ = term.recv() => {},
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
