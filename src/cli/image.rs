//! `localbuild image build`: build the default image from its embedded recipe (a spinner with
//! the current step on a terminal, every step as a line when piped).

use super::exit;
use super::progress::{Mode, Progress};
use localbuild_docker::image;

pub fn build() -> u8 {
    super::with_docker(|docker| async move {
        let mut shown = Progress::new(Mode::detect(false));
        let mut progress = |line: &str| shown.step(line);
        let result = image::build_standard_image(&docker, &mut progress).await;
        shown.finish();
        match result {
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
