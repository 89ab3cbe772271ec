//! Building the default image (placeholder until the recipe lands).

/// Why the default image could not be made.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ImageError(String);

pub async fn ensure_standard_image(
    docker: &bollard::Docker,
    progress: &mut (dyn FnMut(&str) + Send),
) -> Result<(), ImageError> {
    let _ = (docker, progress);
    Err(ImageError("not implemented".into()))
}
