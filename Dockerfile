# syntax=docker/dockerfile:1.7
#
# fleetwatch container image.
#
#   docker build -t fleetwatch:dev .
#   docker buildx build --platform linux/arm64 -t <repo>:<tag> --push .   # for ARM64 Fargate
#
# Stage 1 builds only the dependencies (from Cargo.toml + Cargo.lock), so that layer
# is reused until the lock file changes; stage 2 builds the real source on top of it.
# The runtime image is distroless `cc` (glibc, libgcc, CA certificates, no shell) as
# the non-root user 65532.

ARG RUST_VERSION=1.95

############################ builder ############################
FROM rust:${RUST_VERSION}-bookworm AS builder
# aws-lc-sys compiles C (and may use cmake); build-essential is already in the
# rust image, cmake is not.
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /build

# --- dependency-only layer ---
COPY Cargo.toml Cargo.lock ./
# (Cargo.toml names the benchmarks' files, so placeholders must exist too.)
RUN mkdir -p src bench \
 && echo 'fn main() {}' > src/main.rs \
 && touch src/lib.rs \
 && for b in evaluator pipeline; do echo 'fn main() {}' > "bench/$b.rs"; done \
 && cargo build --release --locked --bin fleetwatch \
 && rm -rf src bench

# --- the real build ---
COPY src ./src
# The model is compiled into the binary (include_bytes! in src/inference/embedded.rs).
COPY models ./models
COPY bench ./bench
# New mtimes so cargo rebuilds the crate itself (not its dependencies).
RUN find src -name '*.rs' -exec touch {} + \
 && cargo build --release --locked --bin fleetwatch \
 && install -D -m 0755 target/release/fleetwatch /out/fleetwatch

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
COPY models/ /usr/share/fleetwatch/models/

ENV FLEETWATCH_METRICS_ADDR=0.0.0.0:9090 \
    FLEETWATCH_MODEL=/usr/share/fleetwatch/models/fleetwatch.json \
    FLEETWATCH_LOG_FORMAT=json

# distroless "nonroot" is uid/gid 65532; stated explicitly so scanners and
# `docker inspect` see it.
USER 65532:65532
EXPOSE 9090

HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD ["/usr/local/bin/fleetwatch", "healthcheck"]

# The worker drains in-flight messages on SIGTERM within FLEETWATCH_SHUTDOWN_GRACE (25s);
# give it at least 30s (`docker stop -t 30`, ECS stopTimeout = 30+).
STOPSIGNAL SIGTERM

ENTRYPOINT ["/usr/local/bin/fleetwatch"]
CMD ["worker"]
