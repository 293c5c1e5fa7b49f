# Multi-stage build of the `registry` binary.
FROM rust:1-bookworm AS build
WORKDIR /src
RUN apt-get update && apt-get install -y --no-install-recommends cmake clang && rm -rf /var/lib/apt/lists/*
COPY . .
RUN cargo build --release --locked --bin registry

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/* \
    && useradd --system --create-home --home-dir /var/lib/registry registry
COPY --from=build /src/target/release/registry /usr/local/bin/registry
USER registry
WORKDIR /var/lib/registry
ENV REGISTRY_DATA_DIR=/var/lib/registry/data \
    REGISTRY_LISTEN=0.0.0.0:8080 \
    REGISTRY_LOG_JSON=true
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s CMD ["/bin/sh", "-c", "exec 3<>/dev/tcp/127.0.0.1/8080"]
ENTRYPOINT ["registry"]
CMD ["serve"]
