# esante-sandbox container image. Not buildable on the development machines (no Docker engine there):
# kept short and conventional on purpose. Build: docker build -t esante-sandbox .
# Run:   docker run -p 8443:8443 -p 8080:8080 -e ADMIN_TOKEN=change-me -v sandbox-data:/data esante-sandbox

FROM swift:6.1-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends libsqlite3-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Package.swift ./
RUN swift package resolve
COPY Sources ./Sources
COPY Tests ./Tests
RUN swift build -c release --static-swift-stdlib --product esante-sandbox \
 && cp "$(swift build -c release --show-bin-path)/esante-sandbox" /usr/local/bin/esante-sandbox

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends libsqlite3-0 libstdc++6 zlib1g ca-certificates tzdata \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin sandbox \
 && mkdir -p /data && chown sandbox:sandbox /data
COPY --from=build /usr/local/bin/esante-sandbox /usr/local/bin/esante-sandbox
COPY Seeds /app/Seeds
USER sandbox
WORKDIR /data
VOLUME /data
EXPOSE 8443 8080
# Listening on all interfaces requires the admin token: the container refuses to start without ADMIN_TOKEN.
ENTRYPOINT ["/bin/sh", "-c", "exec esante-sandbox serve --host 0.0.0.0 --data-dir /data --seeds /app/Seeds --admin-token \"${ADMIN_TOKEN:?set ADMIN_TOKEN}\" \"$@\"", "--"]
