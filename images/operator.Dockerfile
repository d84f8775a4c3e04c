# syntax=docker/dockerfile:1
# The TradingBot operator: `tradingbot operator run` (kopf). Build from the repository root:
#   docker build -f images/operator.Dockerfile -t ghcr.io/tradingbot/tradingbot-operator:0.1.0 .
# tests/images/test_images.py runs the builder's steps (wheel, clean venv, --help) without Docker.
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

# --- builder: the project's wheel, installed with its dependencies into /opt/venv ----------------
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY agents/ agents/
COPY operator/ operator/
RUN python -m pip wheel --no-cache-dir --no-deps --wheel-dir /wheels . \
 && python -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir /wheels/tradingbot-*.whl

# --- final: no compilers, no sources, a non-root user, nothing written outside /tmp ----------------
FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="tradingbot-operator" \
      org.opencontainers.image.description="Kubernetes operator for TradingBot (kopf)" \
      org.opencontainers.image.source="https://github.com/tradingbot/tradingbot" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 tradingbot \
 && useradd --system --uid 10001 --gid 10001 --home-dir /tmp --no-create-home \
      --shell /usr/sbin/nologin tradingbot
COPY --from=builder /opt/venv /opt/venv
# Read-only root friendly: bytecode was compiled at install time and is never written at run time;
# HOME and every temporary file live in /tmp (an emptyDir in the chart).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
WORKDIR /tmp
USER 10001:10001
EXPOSE 8000 8080
ENTRYPOINT ["tradingbot"]
CMD ["operator", "run", "--all-namespaces"]
