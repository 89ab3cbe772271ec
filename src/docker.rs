//! Talks to Docker (bollard) and nowhere else.
