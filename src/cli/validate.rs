//! `localbuild validate FILE...` (issue 2).

use std::path::PathBuf;

pub fn run(files: &[PathBuf]) -> u8 {
    let _ = files;
    todo!("issue 2")
}
