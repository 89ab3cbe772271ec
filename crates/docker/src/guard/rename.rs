//! The daemon's answers named back: when the proxy mapped a registry host of a request
//! (`ACCOUNT.dkr.ecr.REGION.amazonaws.com` → `127.0.0.1:PORT`, [`super::policy::RegistryMap`]),
//! the answer's mentions of the local address are given the host the build named, so
//! `docker push` says `The push refers to repository [ACCOUNT.dkr.ecr…/NAME]` and `docker
//! inspect` lists `ACCOUNT.dkr.ecr…/NAME@sha256:…` as CodeBuild shows them (and the build's image
//! summary, console and hints read the name the buildspec used).
//!
//! Owns [`Renamed`], a response body that streams the daemon's answer through, line by line
//! (the Engine API's progress streams are one JSON message a line), replacing `LOCAL/` by
//! `HOST/` in each complete line; a line cut between two pieces waits for its end.

use bytes::{Bytes, BytesMut};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use std::pin::Pin;
use std::task::{Context, Poll};

/// The longest line held back for its end.
const LINE_LIMIT: usize = 1 << 20;

/// `(local, host)` pairs: `local/` in an answer is written `host/`.
pub type Renames = Vec<(String, String)>;

/// `line` with every `local/` of `renames` written `host/`.
pub fn rename(line: &[u8], renames: &Renames) -> Bytes {
    let mut text = String::from_utf8_lossy(line).into_owned();
    for (local, host) in renames {
        text = text.replace(&format!("{local}/"), &format!("{host}/"));
    }
    Bytes::from(text)
}

/// The daemon's answer with the local registry named back.
pub struct Renamed {
    inner: Incoming,
    renames: Renames,
    /// The start of a line whose end has not arrived.
    pending: BytesMut,
    ended: bool,
}

impl Renamed {
    pub fn new(inner: Incoming, renames: Renames) -> Renamed {
        Renamed {
            inner,
            renames,
            pending: BytesMut::new(),
            ended: false,
        }
    }
}

impl Body for Renamed {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = &mut *self;
        loop {
            if this.ended {
                return Poll::Ready(None);
            }
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => {
                        this.pending.extend_from_slice(&data);
                        // Everything up to the last newline is complete lines.
                        if let Some(end) = this.pending.iter().rposition(|b| *b == b'\n') {
                            let lines = this.pending.split_to(end + 1);
                            return Poll::Ready(Some(Ok(Frame::data(rename(
                                &lines,
                                &this.renames,
                            )))));
                        }
                        // Not lines after all: pass it on as it is rather than hold it all.
                        if this.pending.len() > LINE_LIMIT {
                            return Poll::Ready(Some(Ok(Frame::data(
                                this.pending.split().freeze(),
                            ))));
                        }
                    }
                    // Trailers pass on as they are.
                    Err(frame) => return Poll::Ready(Some(Ok(frame))),
                },
                Poll::Ready(None) => {
                    this.ended = true;
                    if this.pending.is_empty() {
                        return Poll::Ready(None);
                    }
                    let rest = this.pending.split();
                    return Poll::Ready(Some(Ok(Frame::data(rename(&rest, &this.renames)))));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ended
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_local_address_is_named_back_as_the_build_named_it() {
        let renames = vec![(
            "127.0.0.1:42087".to_owned(),
            "000000000000.dkr.ecr.us-east-1.amazonaws.com".to_owned(),
        )];
        let line = br#"{"status":"The push refers to repository [127.0.0.1:42087/web/app]"}"#;
        assert_eq!(
            rename(line, &renames),
            r#"{"status":"The push refers to repository [000000000000.dkr.ecr.us-east-1.amazonaws.com/web/app]"}"#
        );
        // Another registry, and the bare address without a repository, stay.
        let other = br#"["127.0.0.1:5000/x:1","127.0.0.1:42087"]"#;
        assert_eq!(rename(other, &renames), &other[..]);
    }
}
