//! `localbuild serve`: the local CodeBuild, CloudWatch Logs, CodePipeline, Connections and ECS
//! endpoint with the local AWS services and the console (`localbuild-server`).
//!
//! Opens the history, finalises builds whose process died (and removes their containers),
//! connects Docker, binds, prints the address and the `AWS_ENDPOINT_URL` to use, and serves
//! until Ctrl-C or SIGTERM; then it stops the running builds, waits for them to be recorded
//! STOPPED and exits 0. ECS services the pipelines deployed keep running; one line on stderr
//! names them and the command that removes them.

use super::error::CliError;
use super::{ServeArgs, exit};
use localbuild_docker::Docker;
use localbuild_engine::runtime::Runtime as _;
use localbuild_server::{Config, Server};
use localbuild_store::HistoryStore;
use std::sync::Arc;

pub fn run(args: &ServeArgs) -> Result<u8, CliError> {
    let listen: std::net::SocketAddr = args.listen.parse().map_err(|_| {
        CliError::Usage(format!(
            "--listen: expected ADDRESS:PORT (e.g. 127.0.0.1:{}), found {:?}",
            localbuild_server::DEFAULT_PORT,
            args.listen
        ))
    })?;
    let credentials = match &args.credentials {
        None => None,
        Some(path) => {
            let parsed = std::fs::read_to_string(path)
                .map_err(|e| e.to_string())
                .and_then(|t| localbuild_sigv4::Credentials::parse(&t).map_err(|e| e.to_string()));
            match parsed {
                Ok(c) => Some(c),
                Err(e) => {
                    return Err(CliError::Usage(format!(
                        "--credentials: {}: {e}",
                        path.display()
                    )));
                }
            }
        }
    };
    let mut allowed_hosts = Vec::new();
    for name in &args.allowed_hosts {
        match localbuild_server::guard::allowed_host_name(name) {
            Ok(n) => allowed_hosts.push(n),
            Err(e) => return Err(CliError::Usage(format!("--allowed-host: {e}"))),
        }
    }
    if credentials.is_none() && !listen.ip().is_loopback() {
        return Err(CliError::Usage(format!(
            "--listen {listen} is reachable from other machines: give --credentials FILE so that only signed requests are accepted, or listen on 127.0.0.1"
        )));
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
                    return Err(CliError::Usage(format!(
                        "--secrets-file: {}: {e}",
                        path.display()
                    )));
                }
            }
        }
    };
    let account_id = match &args.account_id {
        Some(id) => id.clone(),
        None => super::config::user_account_id()?
            .unwrap_or_else(|| localbuild_engine::ACCOUNT_ID.to_owned()),
    };
    localbuild_engine::check_account_id(&account_id)
        .map_err(|e| CliError::Usage(format!("--account-id: {e}")))?;
    let max = args.max_concurrent_builds.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    if max == 0 {
        return Err(CliError::Usage(
            "--max-concurrent-builds must be at least 1".into(),
        ));
    }
    let region = ["AWS_REGION", "AWS_DEFAULT_REGION"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
        .unwrap_or_else(|| "us-east-1".to_owned());
    super::runtime()?.block_on(async move {
        let root = super::run::store_root();
        let history = HistoryStore::open(&root).map_err(|e| {
            CliError::Fault(format!(
                "cannot open the build history under {}: {e}",
                root.display()
            ))
        })?;
        // What this server creates names its process, so `localbuild gc` leaves it alone.
        let docker = Docker::connect().await?.owned_by(history.owner_label());
        let ecr = Arc::new(
            localbuild_aws::ecr::Ecr::new(history.db().clone(), root.join("ecr"))
                .in_account(&account_id),
        );
        let docker = super::ecr_hosts::with_ecr(docker, Some(&ecr), &region);
        match history.recover() {
            Ok(ids) => {
                for id in ids {
                    let _ = docker.remove_build_resources(Some(&id)).await;
                }
            }
            Err(e) => eprintln!("warning: the build history could not be checked: {e}"),
        }
        let kept = history.clone();
        let config = Config {
            listen,
            credentials,
            allowed_hosts,
            secrets,
            max_concurrent_builds: max,
            region,
            account_id,
            runtime: Arc::new(docker),
            roots: localbuild_sources::Roots {
                git_root: args.git_root.clone().unwrap_or_else(|| root.join("git")),
                s3_root: root.join("s3"),
            },
            history,
            docker_host_access: args.docker_host_access,
            ecr: Some(ecr),
        };
        let server = Server::bind(config).await?;
        let addr = server.addr();
        // A server whose stdout's reader left (`| head -1`) goes on serving.
        let _ = super::out::print(format!(
            "localbuild serve: listening on http://{addr}\nexport AWS_ENDPOINT_URL=http://{addr}\n"
        ));
        server.run(shutdown_signal()).await?;
        // ECS services keep running, as in AWS: one line on what runs and how to remove it.
        let endpoint = format!("http://{addr}");
        if let Some(note) = localbuild_server::ecs::services::shutdown_note(kept.db(), &endpoint) {
            eprintln!("{note}");
        }
        let _ = super::out::print("localbuild serve: stopped\n");
        Ok(exit::SUCCESS)
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
