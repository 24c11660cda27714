# nova-lvm-exporter: container image (docs/deployment.md, "Running it in a container").
#
# With a registry, the usual way: the builder stage compiles the exporter in the official Rust
# image and the runtime stage is Debian slim with lvm2 and the binary:
#   docker build --build-arg NOVA_LVM_EXPORTER_REVISION="$(git rev-parse --short=12 HEAD)" -t nova-lvm-exporter .
#
# Without a registry, or to package a binary built elsewhere (how CI builds it, from a
# locally debootstrapped Debian base; Debian bookworm's own rustc is too old for the crate):
#   cargo build --release --locked
#   install -D target/release/nova-lvm-exporter dist/nova-lvm-exporter
#   buildah bud --build-arg BINARY_FROM=prebuilt -t nova-lvm-exporter .
#
# The runtime image runs as root: vgs/lvs open the PVs' block devices, which a container can
# only do privileged. Run it as docs/deployment.md shows (kolla-style: privileged, host network, /dev,
# /run/lvm and the LVM, nova and libvirt configuration mounted, the last read-only).

ARG BASE_IMAGE=docker.io/library/debian:bookworm-slim
ARG RUST_IMAGE=docker.io/library/rust:1-bookworm
ARG BINARY_FROM=builder

FROM ${RUST_IMAGE} AS builder
ARG NOVA_LVM_EXPORTER_REVISION=unknown
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY src ./src
COPY crates ./crates
RUN cargo build --release --locked \
 && install -D target/release/nova-lvm-exporter /out/nova-lvm-exporter

FROM ${BASE_IMAGE} AS prebuilt
COPY dist/nova-lvm-exporter /out/nova-lvm-exporter

# The stage the binary comes from: "builder" (compile here) or "prebuilt" (dist/).
FROM ${BINARY_FROM} AS binary

FROM ${BASE_IMAGE}
# lvm2 follows the base release's security updates: pinning an exact version would only make
# the build fail when Debian publishes the next one.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends lvm2 \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /etc/nova /etc/libvirt/qemu
LABEL org.opencontainers.image.title="nova-lvm-exporter" \
      org.opencontainers.image.description="Prometheus exporter of the LVM disk space OpenStack nova does not see" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV LVM_SUPPRESS_FD_WARNINGS=1
# 10061: above the full 9100-9999 block of Prometheus' default port allocations (docs/configuration.md).
EXPOSE 10061
ENTRYPOINT ["/usr/local/bin/nova-lvm-exporter"]
# Last, so that everything above stays cached when only the binary changes.
COPY --from=binary /out/nova-lvm-exporter /usr/local/bin/nova-lvm-exporter
