//! Talks to Docker (bollard) and nowhere else.

pub mod image;
