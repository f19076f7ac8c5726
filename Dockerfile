# syntax=docker/dockerfile:1
# gatewaycerts image: docker build -t gatewaycerts:0.1.0 .
# Two stages: the builder makes wheels of the project and of its dependencies; the final image installs only
# those wheels (no compiler, no pip cache, no source tree) and runs as the unprivileged user 10001.
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY pyproject.toml setup.cfg README.md ./
COPY gatewaycerts ./gatewaycerts
RUN pip wheel --no-deps --wheel-dir /wheels . \
 && pip wheel --wheel-dir /wheels /wheels/gatewaycerts-*.whl

FROM ${PYTHON_IMAGE}
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    GATEWAYCERTS_HOST=0.0.0.0 \
    GATEWAYCERTS_PORT=8080 \
    GATEWAYCERTS_STATE_DIR=/var/lib/gatewaycerts
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels gatewaycerts \
 && groupadd --system --gid 10001 gatewaycerts \
 && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home \
        --shell /usr/sbin/nologin gatewaycerts \
 && install -d -o 10001 -g 10001 -m 0700 /var/lib/gatewaycerts
USER 10001:10001
WORKDIR /var/lib/gatewaycerts
EXPOSE 8080
# Kubernetes uses its own probes (GET /healthz, /readyz); this one serves plain `docker run`.
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2).status != 200)"]
ENTRYPOINT ["gatewaycerts"]
CMD ["serve"]
