//! `localbuild gc`: remove containers, volumes and networks left by builds that were killed.

use localbuild::docker::Docker;

pub fn run() -> u8 {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return 3;
        }
    };
    runtime.block_on(async {
        let docker = match Docker::connect().await {
            Ok(d) => d,
            Err(e) => {
                eprintln!("error: {e}");
                return 3;
            }
        };
        match docker.remove_build_resources(None).await {
            Ok(removed) => {
                for c in &removed.containers {
                    println!("removed container {c}");
                }
                for v in &removed.volumes {
                    println!("removed volume {v}");
                }
                for n in &removed.networks {
                    println!("removed network {n}");
                }
                if removed == Default::default() {
                    println!("nothing to remove");
                }
                0
            }
            Err(e) => {
                eprintln!("error: {e}");
                3
            }
        }
    })
}
