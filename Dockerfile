# syntax=docker/dockerfile:1
#
# Tollgate's container images, one per binary, from one build:
#
#   docker build --target controller -t ghcr.io/tollgate-dev/tollgate-controller:0.1.0 .
#   docker build --target dataplane  -t ghcr.io/tollgate-dev/tollgate-dataplane:0.1.0 .
#
# Two images rather than one with both binaries: the data plane runs in every
# Gateway's pods and never needs the controller (nor the Kubernetes client it
# links), so its image stays small and its CVE surface is its own. The
# builder stage is shared, so building both compiles the workspace once.

ARG RUST_VERSION=1.92

FROM rust:${RUST_VERSION}-bookworm AS builder
WORKDIR /src
COPY . .
# Cache the registry and the target folder between builds (BuildKit).
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked \
        -p tollgate-controller --bin tollgate-controller \
        -p tollgate-dataplane --bin tollgate-dataplane \
 && mkdir -p /out \
 && cp target/release/tollgate-controller target/release/tollgate-dataplane /out/

# The runtime: glibc and CA certificates, no shell, no package manager,
# user 65532 (nonroot). Both binaries are dynamically linked against glibc
# only (rustls with aws-lc-rs, no OpenSSL).
FROM gcr.io/distroless/cc-debian12:nonroot AS controller
COPY --from=builder /out/tollgate-controller /usr/local/bin/tollgate-controller
USER 65532:65532
EXPOSE 9902 9903
ENTRYPOINT ["/usr/local/bin/tollgate-controller"]

FROM gcr.io/distroless/cc-debian12:nonroot AS dataplane
COPY --from=builder /out/tollgate-dataplane /usr/local/bin/tollgate-dataplane
USER 65532:65532
EXPOSE 9901
ENTRYPOINT ["/usr/local/bin/tollgate-dataplane"]
