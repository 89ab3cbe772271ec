# localbuild-test/bash:1 - localbuild-test/busybox:1 plus Debian's static bash at /bin/bash.
# Built by scripts/build-test-images.sh; the context holds only the `bash` binary.
ARG BASE=localbuild-test/busybox:1
FROM ${BASE}
COPY bash /bin/bash
