# regionpulse images, multi-stage: the programs are built on Debian bookworm with the same
# Debian packages tools/setup installs, and run on debian:bookworm-slim with only the shared
# libraries they load. The CO-RE BPF objects are inside the agent binary (libbpf skeletons),
# so no compiler, headers or kernel sources are needed at run time.
#   docker build --target agent -t regionpulse-agent .
#   docker build --target aggregator -t regionpulse-aggregator .     (pulsectl is inside)
# Here, without a registry: tools/image (makes the debian base images locally, then buildah).
# The build reads the kernel BTF of the machine that builds (/sys/kernel/btf/vmlinux) only to
# generate vmlinux.h; CO-RE relocates the programs on whatever kernel runs them.

# Where the programs come from: `source` compiles them in the build stage below (the default;
# what a release does); `prebuilt` takes them from .image-programs/ in the context, which
# `tools/image --programs-from BUILD_DIR` fills from a build made on a bookworm host (the test
# suite's own build: the image test then spends its time on the images, not on a second compile).
# buildah 1.28 (bookworm) skips the stage a defaulted ARG names: give it `--build-arg
# PROGRAMS=source` explicitly (tools/image does); docker and newer buildah take the default.
ARG PROGRAMS=source

FROM debian:bookworm AS programs-source
ENV DEBIAN_FRONTEND=noninteractive
COPY tools/setup /src/tools/setup
RUN /src/tools/setup --build-only && rm -rf /var/lib/apt/lists/*
COPY . /src
WORKDIR /src
# Empty: as many jobs as processors.
ARG BUILD_JOBS=
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DREGIONPULSE_BUILD_TESTS=OFF \
 && cmake --build /build -j "${BUILD_JOBS:-$(nproc)}" \
      --target regionpulse-agent regionpulse-aggregator pulsectl \
 && mkdir -p /out/agent /out/aggregator \
 && strip --strip-debug -o /out/agent/regionpulse-agent /build/agent/regionpulse-agent \
 && strip --strip-debug -o /out/aggregator/regionpulse-aggregator /build/aggregator/regionpulse-aggregator \
 && strip --strip-debug -o /out/aggregator/pulsectl /build/tools/pulsectl/pulsectl
# The runtime packages of each image: the Debian packages that own its programs' libraries.
RUN for image in agent aggregator; do \
      tools/runtime-packages /out/$image/* >/out/$image.packages; \
      echo "$image needs: $(tr '\n' ' ' </out/$image.packages)"; \
    done

FROM scratch AS programs-prebuilt
COPY .image-programs/ /out/

FROM programs-${PROGRAMS} AS programs

FROM debian:bookworm-slim AS runtime-base
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG SOURCE=https://github.com/regionpulse/regionpulse
LABEL org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.vendor="regionpulse"

FROM runtime-base AS agent
COPY --from=programs /out/agent.packages /tmp/packages
# curl and ca-certificates: the chart's node-topology init container reads the node's labels
# from the API server with them. mount and nsenter (util-linux) are in the base already.
RUN apt-get update -qq \
 && xargs -a /tmp/packages apt-get install -y -qq --no-install-recommends curl ca-certificates \
 && rm -rf /var/lib/apt/lists/* /tmp/packages
COPY --from=programs /out/agent/regionpulse-agent /usr/bin/regionpulse-agent
LABEL org.opencontainers.image.title="regionpulse-agent" \
      org.opencontainers.image.description="regionpulse node agent: BPF tc stamps, STAMP prober and reflector, health reports"
# UID 0 with capabilities BPF, PERFMON, NET_ADMIN only (the chart drops every other one):
# Kubernetes cannot give added capabilities to a non-root user (kubernetes#56374).
ENTRYPOINT ["/usr/bin/regionpulse-agent"]

FROM runtime-base AS aggregator
COPY --from=programs /out/aggregator.packages /tmp/packages
RUN apt-get update -qq \
 && xargs -a /tmp/packages apt-get install -y -qq --no-install-recommends \
 && rm -rf /var/lib/apt/lists/* /tmp/packages \
 && mkdir -p /var/lib/regionpulse && chown 65532:65532 /var/lib/regionpulse
COPY --from=programs /out/aggregator/regionpulse-aggregator /out/aggregator/pulsectl /usr/bin/
LABEL org.opencontainers.image.title="regionpulse-aggregator" \
      org.opencontainers.image.description="regionpulse aggregator: region matrix and failover verdict; pulsectl inside"
USER 65532:65532
VOLUME /var/lib/regionpulse
EXPOSE 7700 9101
ENTRYPOINT ["/usr/bin/regionpulse-aggregator"]
