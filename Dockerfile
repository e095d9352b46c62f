# esante-sandbox container image. Not buildable on the development machines (no Docker engine there): kept short and
# conventional on purpose. Build: docker build -t esante-sandbox .
# Run:   docker run -p 8443:8443 -p 8080:8080 -e ESANTE_SANDBOX_ADMIN_TOKEN=change-me -v sandbox-data:/data esante-sandbox

# The Swift version CI builds with (README "Building offline").
FROM swift:6.3.1-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends libsqlite3-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Package.swift ./
RUN swift package resolve
COPY Sources ./Sources
COPY Plugins ./Plugins
COPY Tests ./Tests
# Read at build time only: the EmbedSeeds plugin builds them into the binary.
COPY Seeds ./Seeds
RUN swift build -c release --static-swift-stdlib --product esante-sandbox \
 && strip -o /usr/local/bin/esante-sandbox "$(swift build -c release --show-bin-path)/esante-sandbox"

# What the binary needs beyond itself (scripts/binary-check checks the list): glibc, libstdc++, libgcc_s, zlib,
# SQLite, libxml2 (FoundationXML; it brings ICU and lzma); curl only for the HEALTHCHECK.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends libsqlite3-0 libstdc++6 zlib1g libxml2 tzdata curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin sandbox \
 && mkdir -p /data && chown sandbox:sandbox /data
COPY --from=build /usr/local/bin/esante-sandbox /usr/local/bin/esante-sandbox
USER sandbox
WORKDIR /data
VOLUME /data
EXPOSE 8443 8080
# Every serve flag can come from an ESANTE_SANDBOX_* variable; listening on all interfaces requires the admin token
# (serve refuses to start without one). The cache (built-in seeds written out, RSA key pool) lives in the volume too.
ENV ESANTE_SANDBOX_HOST=0.0.0.0 \
    ESANTE_SANDBOX_DATA_DIR=/data/sandbox \
    ESANTE_SANDBOX_CACHE=/data/cache
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD curl -fsS -H "Authorization: Bearer ${ESANTE_SANDBOX_ADMIN_TOKEN}" http://127.0.0.1:8080/admin/health || exit 1
ENTRYPOINT ["esante-sandbox", "serve"]
