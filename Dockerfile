# syntax=docker/dockerfile:1
#
# One image for every StuffMart service; the service is chosen by the command:
#
#   docker build -t stuffmart .
#   docker run --rm -p 3000:3000 stuffmart                 # ms-router (the default)
#   docker run --rm -e HEALTH_PORT=8080 stuffmart ms-user  # a backend service
#   docker run --rm stuffmart seed                         # demo data (ms-stuff's seed binary)
#
# Stages:
#   chef     Rust toolchain + cargo-chef
#   planner  computes the dependency recipe (changes only when manifests/Cargo.lock change)
#   builder  compiles the dependencies from the recipe (cached layer), then the services
#   web      builds the React client (web-client/dist)
#   runtime  debian:bookworm-slim, non-root, binaries + web client
#
# Build arguments:
#   RUST_VERSION                 Rust toolchain of the rust:<v>-bookworm base (default 1.95)
#   NODE_VERSION                 Node.js major for the web client (default 20)
#   CARGO_CHEF_VERSION           cargo-chef release installed from crates.io

ARG RUST_VERSION=1.95
ARG NODE_VERSION=20

# ---------------------------------------------------------------------------------------
FROM rust:${RUST_VERSION}-bookworm AS chef
ARG CARGO_CHEF_VERSION=0.1.78
RUN cargo install cargo-chef --locked --version "${CARGO_CHEF_VERSION}" \
    && rm -rf "${CARGO_HOME}/registry"
WORKDIR /src

# ---------------------------------------------------------------------------------------
FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

# ---------------------------------------------------------------------------------------
FROM chef AS builder
# The services the image carries; each is a workspace package with a binary of its name.
ENV STUFFMART_PACKAGES="ms-router ms-user ms-stuff ms-order ms-payment"
COPY --from=planner /src/recipe.json recipe.json
# Dependency layer: rebuilt only when the recipe (manifests, Cargo.lock) changes.
RUN set -eux; \
    pkgs=""; for p in ${STUFFMART_PACKAGES}; do pkgs="$pkgs -p $p"; done; \
    cargo chef cook --release --locked --bins $pkgs --recipe-path recipe.json
COPY . .
RUN set -eux; \
    pkgs=""; for p in ${STUFFMART_PACKAGES}; do pkgs="$pkgs -p $p"; done; \
    cargo build --release --locked --bins $pkgs; \
    mkdir -p /out; \
    for bin in ${STUFFMART_PACKAGES} seed; do \
        install -m 0755 "target/release/${bin}" "/out/${bin}"; \
    done

# ---------------------------------------------------------------------------------------
FROM node:${NODE_VERSION}-bookworm-slim AS web
WORKDIR /web
COPY web-client/package.json web-client/package-lock.json web-client/.npmrc ./
RUN npm ci --no-audit --no-fund
COPY web-client/ ./
RUN npm run build

# ---------------------------------------------------------------------------------------
FROM debian:bookworm-slim AS runtime
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends poppler-utils ca-certificates curl; \
    rm -rf /var/lib/apt/lists/*; \
    groupadd --system --gid 10001 stuffmart; \
    useradd --system --uid 10001 --gid stuffmart --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin stuffmart; \
    mkdir -p /app/data; \
    chown stuffmart:stuffmart /app/data

WORKDIR /app
COPY --from=builder /out/ /usr/local/bin/
COPY --from=web /web/dist /app/web-client/dist

# DATA_DIR only matters without MONGODB_URL (SQLite); compose and Kubernetes set MONGODB_URL.
ENV STATIC_DIR=/app/web-client/dist \
    DATA_DIR=/app/data \
    PORT=3000 \
    RUST_LOG=info

USER 10001:10001

# 3000: ms-router (HTTP, Socket.IO, web client, /healthz, /readyz).
# 8080: HEALTH_PORT of a backend service (/healthz, /readyz) when HEALTH_PORT=8080.
EXPOSE 3000 8080

# Backends answer on HEALTH_PORT, the router on PORT. docker compose and Kubernetes
# define their own checks; this one serves plain `docker run`.
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD curl -fsS "http://127.0.0.1:${HEALTH_PORT:-${PORT:-3000}}/healthz" >/dev/null || exit 1

CMD ["ms-router"]
