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

/// The daemon's answer (`B`, hyper's [`Incoming`] in the proxy) with the local registry named
/// back.
pub struct Renamed<B = Incoming> {
    inner: B,
    renames: Renames,
    /// The start of a line whose end has not arrived.
    pending: BytesMut,
    ended: bool,
}

impl<B> Renamed<B> {
    pub fn new(inner: B, renames: Renames) -> Renamed<B> {
        Renamed {
            inner,
            renames,
            pending: BytesMut::new(),
            ended: false,
        }
    }
}

impl<B: Body<Data = Bytes> + Unpin> Body for Renamed<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
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
    use http_body_util::{BodyExt, StreamBody};

    fn renames() -> Renames {
        vec![(
            "127.0.0.1:5000".to_owned(),
            "1.dkr.ecr.us-east-1.amazonaws.com".to_owned(),
        )]
    }

    /// `chunks` through [`Renamed`]: the pieces it gives, in order.
    fn through(chunks: &[&str]) -> Vec<String> {
        let frames: Vec<Result<Frame<Bytes>, std::convert::Infallible>> = chunks
            .iter()
            .map(|c| Ok(Frame::data(Bytes::copy_from_slice(c.as_bytes()))))
            .collect();
        let body = Renamed::new(
            StreamBody::new(futures_util::stream::iter(frames)),
            renames(),
        );
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut body = body;
            let mut out = vec![];
            while let Some(frame) = body.frame().await {
                if let Ok(data) = frame.unwrap().into_data() {
                    out.push(String::from_utf8(data.to_vec()).unwrap());
                }
            }
            out
        })
    }

    #[test]
    fn a_name_cut_between_two_pieces_is_named_back_once_its_line_is_whole() {
        assert_eq!(
            through(&[
                "{\"status\":\"[127.0.0",
                ".1:5000/app]\"}\n{\"id\":",
                "\"x\"}"
            ]),
            [
                "{\"status\":\"[1.dkr.ecr.us-east-1.amazonaws.com/app]\"}\n",
                "{\"id\":\"x\"}"
            ]
        );
        // Complete lines go on at once.
        assert_eq!(through(&["a\n", "b\n"]), ["a\n", "b\n"]);
    }

    #[test]
    fn a_body_without_lines_is_not_held_whole() {
        let big = "x".repeat(LINE_LIMIT + 1);
        let out = through(&[&big, "y"]);
        assert_eq!(out, [big.clone(), "y".to_owned()]);
    }

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
