//! `localbuild image build`: build the default image from its embedded recipe.

use localbuild::docker::{Docker, image};

pub fn build() -> u8 {
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
        let mut progress = |line: &str| eprintln!("{line}");
        match image::build_standard_image(&docker, &mut progress).await {
            Ok(()) => {
                println!("built {}", image::STANDARD_IMAGE);
                0
            }
            Err(e) => {
                eprintln!("error: {e}");
                3
            }
        }
    })
}
