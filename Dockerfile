# syntax=docker/dockerfile:1
#
# stallwatch container image: a static (musl) binary on distroless, running as non-root.
#
#   docker build -t stallwatch:dev .
#   docker run --rm -p 9184:9184 -v "$PWD/config.yaml:/etc/stallwatch/config.yaml:ro" \
#     -v "$HOME/.kube:/home/nonroot/.kube:ro" stallwatch:dev
#
# Needs BuildKit (the default builder of current Docker/Podman/buildah) for the cache mounts.
# Base images are pinned by tag; pin by digest in your release pipeline
# (e.g. rust:1.95-bookworm@sha256:...).

# ---- build: static binary for x86_64-unknown-linux-musl ----
FROM rust:1.95-bookworm AS build
ARG TARGET=x86_64-unknown-linux-musl
# The git revision for `--version` and stallwatch_build_info (the build context has no .git):
# docker build --build-arg STALLWATCH_GIT_REVISION="$(git rev-parse --short=12 HEAD)" .
ARG STALLWATCH_GIT_REVISION=unknown
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# musl-gcc for the C parts of the dependency tree (ring, used by rustls).
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools=1.2.3-1 \
 && rm -rf /var/lib/apt/lists/* \
 && rustup target add "${TARGET}"
ENV CC_x86_64_unknown_linux_musl=musl-gcc \
    CARGO_TARGET_X86_64_UNKNOWN_LINUX_MUSL_RUSTFLAGS="-C target-feature=+crt-static"
WORKDIR /src
# Only what the build reads (see .dockerignore, an allowlist).
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    STALLWATCH_GIT_REVISION="${STALLWATCH_GIT_REVISION}" \
    cargo build --release --locked --target "${TARGET}" --bin stallwatch \
 && cp "target/${TARGET}/release/stallwatch" /stallwatch \
 && if readelf -l /stallwatch | grep -q 'program interpreter'; then echo "stallwatch is not static" >&2; exit 1; fi

# ---- runtime: no shell, no package manager; uid/gid 65532 (nonroot) ----
FROM gcr.io/distroless/static-debian12:nonroot
LABEL org.opencontainers.image.title="stallwatch" \
      org.opencontainers.image.description="Prometheus exporter for Kubernetes operators and rollouts that silently stop converging" \
      org.opencontainers.image.source="https://github.com/stallwatch/stallwatch" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /stallwatch /stallwatch
# Listen on all interfaces inside the container (also the binary's default).
ENV STALLWATCH_LISTEN=0.0.0.0:9184
USER 65532:65532
EXPOSE 9184
ENTRYPOINT ["/stallwatch"]
CMD ["run", "--config", "/etc/stallwatch/config.yaml"]
