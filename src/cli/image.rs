//! `localbuild image build`: build the default image from its embedded recipe.

use super::exit;
use localbuild_docker::image;

pub fn build() -> u8 {
    super::with_docker(|docker| async move {
        let mut progress = |line: &str| eprintln!("{line}");
        match image::build_standard_image(&docker, &mut progress).await {
            Ok(()) => {
                println!("built {}", image::STANDARD_IMAGE);
                exit::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                exit::FAULT
            }
        }
    })
}
