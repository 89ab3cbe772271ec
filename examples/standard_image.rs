//! Make sure the default build image exists: `cargo run --example standard_image`.
//!
//! Builds `localbuild/standard:1.0` (and its base) when missing, printing progress with
//! timestamps. Pass `--rebuild` to build it even if it exists. Talks to the Docker daemon
//! named by `DOCKER_HOST` (default: the local socket).

use std::time::Instant;

use localbuild::docker::image;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rebuild = std::env::args().any(|a| a == "--rebuild");
    let docker = bollard::Docker::connect_with_defaults()?
        .with_timeout(std::time::Duration::from_secs(3600))
        .negotiate_version()
        .await?;
    let start = Instant::now();
    let mut progress = |line: &str| eprintln!("[{:>6.1}s] {line}", start.elapsed().as_secs_f64());
    let result = if rebuild {
        image::build_standard_image(&docker, &mut progress).await
    } else {
        image::ensure_standard_image(&docker, &mut progress).await
    };
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
    eprintln!(
        "[{:>6.1}s] {} ready",
        start.elapsed().as_secs_f64(),
        image::STANDARD_IMAGE
    );
    Ok(())
}
