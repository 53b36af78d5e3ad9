# syntax=docker/dockerfile:1
# Switchyard gateway image.
#   docker build -t switchyard .                              # cloud providers only
#   docker build -t switchyard --build-arg INSTALL_LOCAL=true .  # + in-process llama.cpp model ('.[local]')
# Run: docker run -p 8000:8000 --env-file .env -v $PWD/config/gateway.yaml:/etc/switchyard/gateway.yaml:ro switchyard
# The configuration is read from SWITCHYARD_CONFIG=/etc/switchyard/gateway.yaml (mount yours there).

ARG PYTHON_IMAGE=python:3.11-slim

# ---- build: install the project and its dependencies from pyproject.toml into a virtualenv ----
FROM ${PYTHON_IMAGE} AS build
ARG INSTALL_LOCAL=false
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
# llama-cpp-python compiles llama.cpp: only the local-model build needs a C/C++ toolchain.
RUN if [ "$INSTALL_LOCAL" = "true" ]; then \
        apt-get update \
        && apt-get install -y --no-install-recommends build-essential cmake \
        && rm -rf /var/lib/apt/lists/*; \
    fi
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md ./
COPY app ./app
RUN if [ "$INSTALL_LOCAL" = "true" ]; then pip install ".[local]"; else pip install .; fi

# ---- runtime: the virtualenv, the default configuration, a non-root user ----
FROM ${PYTHON_IMAGE} AS runtime
ARG INSTALL_LOCAL=false
# llama.cpp links against OpenMP at run time.
RUN if [ "$INSTALL_LOCAL" = "true" ]; then \
        apt-get update \
        && apt-get install -y --no-install-recommends libgomp1 \
        && rm -rf /var/lib/apt/lists/*; \
    fi \
    && groupadd --system --gid 10001 switchyard \
    && useradd --system --uid 10001 --gid switchyard --create-home --home-dir /home/switchyard --shell /usr/sbin/nologin switchyard
COPY --from=build /opt/venv /opt/venv
COPY config/gateway.yaml /etc/switchyard/gateway.yaml
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    SWITCHYARD_CONFIG=/etc/switchyard/gateway.yaml
USER switchyard
WORKDIR /home/switchyard
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4)"]
CMD ["switchyard", "serve", "--host", "0.0.0.0", "--port", "8000"]
