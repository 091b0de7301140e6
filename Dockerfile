# syntax=docker/dockerfile:1.7
#
# fleetwatch container image.
#
#   docker build -t fleetwatch:dev .
#   docker buildx build --platform linux/arm64 -t <repo>:<tag> --push .   # for ARM64 Fargate
#   docker run --read-only fleetwatch:dev ...                             # as on ECS
#
# Stage 1 builds only the dependencies (from Cargo.toml + Cargo.lock), so that layer
# is reused until the lock file changes; stage 2 builds the real source on top of it.
# The runtime image is distroless `cc` (glibc, libgcc, CA certificates, no shell) as
# the non-root user 65532.

ARG RUST_VERSION=1.95
# Cargo features of the binary: empty for the worker image; `simulate` adds
# `fleetwatch simulate` (docker-compose.yml builds its dev image with it, for
# the demo's simulator).
ARG FEATURES=""

############################ builder ############################
# The builder runs on the build machine's own architecture and cross-compiles for
# the target one (docker buildx --platform linux/arm64 on an x86 machine): much
# faster than compiling under QEMU emulation.
FROM --platform=$BUILDPLATFORM rust:${RUST_VERSION}-bookworm AS builder
ARG TARGETARCH
ARG FEATURES
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# aws-lc-sys compiles C (and may use cmake): cmake, plus a C cross toolchain when
# the target architecture is not the build machine's. Versions are bookworm's.
RUN apt-get update \
 && case "${TARGETARCH}/$(dpkg --print-architecture)" in \
      amd64/amd64|arm64/arm64) \
        apt-get install -y --no-install-recommends cmake=3.25.1-1 ;; \
      arm64/*) \
        apt-get install -y --no-install-recommends cmake=3.25.1-1 \
          gcc-aarch64-linux-gnu=4:12.2.0-3 libc6-dev-arm64-cross=2.36-8cross1 ;; \
      amd64/*) \
        apt-get install -y --no-install-recommends cmake=3.25.1-1 \
          gcc-x86-64-linux-gnu=4:12.2.0-3 libc6-dev-amd64-cross=2.36-8cross1 ;; \
      *) echo "unsupported TARGETARCH=${TARGETARCH}: build for linux/amd64 or linux/arm64" >&2; exit 1 ;; \
    esac \
 && rm -rf /var/lib/apt/lists/*
# Linker and C compiler per Rust target; the triplet-named tools exist natively too,
# so the same settings serve a native build.
ENV CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc \
    CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc \
    AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar \
    CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER=x86_64-linux-gnu-gcc \
    CC_x86_64_unknown_linux_gnu=x86_64-linux-gnu-gcc \
    AR_x86_64_unknown_linux_gnu=x86_64-linux-gnu-ar
RUN case "${TARGETARCH}" in \
      amd64) target=x86_64-unknown-linux-gnu ;; \
      arm64) target=aarch64-unknown-linux-gnu ;; \
      *) echo "unsupported TARGETARCH=${TARGETARCH}" >&2; exit 1 ;; \
    esac \
 && rustup target add "$target" \
 && echo "$target" > /rust-target
WORKDIR /build

# --- dependency-only layer ---
COPY Cargo.toml Cargo.lock ./
# (Cargo.toml names the benchmarks' files and the tests that need a feature, so
# placeholders must exist too: cargo checks every named target's file.)
# Cache mounts keep cargo's registry and the target directory between builds; the
# binary is copied out of the target cache in the same step that builds it.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git/db \
    --mount=type=cache,target=/build/target,sharing=locked \
    mkdir -p src bench/e2e tests \
 && echo 'fn main() {}' > src/main.rs \
 && touch src/lib.rs \
 && for b in evaluator pipeline e2e/main; do echo 'fn main() {}' > "bench/$b.rs"; done \
 && for t in binary resilience; do echo 'fn main() {}' > "tests/$t.rs"; done \
 && cargo build --release --locked --target "$(cat /rust-target)" --bin fleetwatch --features "$FEATURES" \
 && rm -rf src bench tests

# --- the real build ---
COPY src ./src
# The model is compiled into the binary (include_bytes! in src/inference/embedded.rs).
COPY models ./models
COPY bench ./bench
# New mtimes so cargo rebuilds the crate itself (not its dependencies).
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git/db \
    --mount=type=cache,target=/build/target,sharing=locked \
    find src -name '*.rs' -exec touch {} + \
 && mkdir -p tests \
 && for t in binary resilience; do echo 'fn main() {}' > "tests/$t.rs"; done \
 && target=$(cat /rust-target) \
 && cargo build --release --locked --target "$target" --bin fleetwatch --features "$FEATURES" \
 && install -D -m 0755 "target/$target/release/fleetwatch" /out/fleetwatch

############################ runtime ############################
FROM gcr.io/distroless/cc-debian12:nonroot AS runtime

ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="fleetwatch" \
      org.opencontainers.image.description="Vehicle-fleet telemetry worker: S3 -> SQS -> parse -> infer -> DynamoDB -> SNS" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/fleetwatch/fleetwatch" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.base.name="gcr.io/distroless/cc-debian12:nonroot"

COPY --from=builder /out/fleetwatch /usr/local/bin/fleetwatch
# The embedded maintenance model (FLEETWATCH_MODEL defaults to this path).
COPY model-artifacts/ /usr/share/fleetwatch/models/

ENV FLEETWATCH_METRICS_ADDR=0.0.0.0:9090 \
    FLEETWATCH_MODEL=/usr/share/fleetwatch/models/fleetwatch.json \
    FLEETWATCH_LOG_FORMAT=json

# The root filesystem is read-only on ECS (and may be with `docker run --read-only`):
# /tmp is the writable scratch space.
VOLUME /tmp

# distroless "nonroot" is uid/gid 65532; stated explicitly so scanners and
# `docker inspect` see it.
USER 65532:65532
EXPOSE 9090

HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD ["/usr/local/bin/fleetwatch", "healthcheck"]

# The worker drains in-flight messages on SIGTERM within FLEETWATCH_SHUTDOWN_GRACE (25s),
# then returns the rest to the queue: give it more than 30s (`docker stop -t 35`,
# ECS stopTimeout 35, the Terraform default).
STOPSIGNAL SIGTERM

ENTRYPOINT ["/usr/local/bin/fleetwatch"]
CMD ["worker"]
