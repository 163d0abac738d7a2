# Gearbox: build gearboxd on Debian 12, ship it on bookworm-slim.
#   docker build -t gearbox .
#   docker run -p 7411:7411 -p 9324:9324 -v gearbox-data:/data \
#     -v $PWD/creds.json:/etc/gearbox/credentials.json:ro \
#     -e GEARBOX_CREDENTIALS=/etc/gearbox/credentials.json gearbox
# The container listens on 0.0.0.0, which gearboxd allows only with credentials
# (docs/SECURITY.md): the file must be mode 0600 and owned by uid 10001 (the
# image's gearbox user). GEARBOX_ALLOW_PUBLIC_WITHOUT_AUTH=1 runs without them,
# with a warning, for trusted networks. Extra arguments go to gearboxd.

FROM debian:bookworm AS builder
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential cmake pkg-config \
      libuv1-dev libmsgpack-dev librocksdb-dev libcjson-dev libcmocka-dev libssl-dev \
      libhttp-parser-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cmake -S . -B /build -G "Unix Makefiles" \
      -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGBX_BENCH=OFF \
 && cmake --build /build -j"$(nproc)" --target gearboxd \
 && install -D -m 0755 /build/server/gearboxd /out/usr/local/bin/gearboxd

FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libuv1 libmsgpackc2 librocksdb7.8 libcjson1 libssl3 libhttp-parser2.9 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 gearbox \
 && useradd --system --uid 10001 --gid gearbox --home-dir /data --no-create-home \
      --shell /usr/sbin/nologin gearbox \
 && mkdir -p /data && chown gearbox:gearbox /data && chmod 0700 /data
COPY --from=builder /out/ /
USER gearbox
VOLUME /data
EXPOSE 7411 9324
ENTRYPOINT ["/bin/sh", "-c", "exec gearboxd --listen 0.0.0.0:7411 --http 0.0.0.0:9324 --data /data ${GEARBOX_CREDENTIALS:+--credentials \"$GEARBOX_CREDENTIALS\"} ${GEARBOX_ALLOW_PUBLIC_WITHOUT_AUTH:+--allow-public-without-auth} \"$@\"", "gearboxd"]
