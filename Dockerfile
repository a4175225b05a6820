# syntax=docker/dockerfile:1
# ctxeval: one image for the service (api, worker, migrate); built with EXTRAS=local it also serves a
# GGUF model with llama.cpp (`ctxeval model serve`). See docs/deployment.md.
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
ARG EXTRAS=""
# llama.cpp is built for any x86-64 CPU with AVX2 rather than for the build machine's own CPU.
ARG LLAMA_CMAKE_ARGS="-DGGML_NATIVE=OFF"
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# llama-cpp-python (the `local` extra) compiles llama.cpp: it needs a compiler and cmake.
RUN if [ -n "$EXTRAS" ]; then \
        apt-get update \
        && apt-get install -y --no-install-recommends build-essential cmake \
        && rm -rf /var/lib/apt/lists/*; \
    fi
WORKDIR /src
COPY . .
RUN CMAKE_ARGS="$LLAMA_CMAKE_ARGS" CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" pip wheel --wheel-dir /wheels ".${EXTRAS:+[$EXTRAS]}"

FROM ${PYTHON_IMAGE}
ARG EXTRAS=""
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# llama.cpp's CPU backend links OpenMP at run time.
RUN if [ -n "$EXTRAS" ]; then \
        apt-get update \
        && apt-get install -y --no-install-recommends libgomp1 \
        && rm -rf /var/lib/apt/lists/*; \
    fi
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-index --find-links /wheels "ctxeval${EXTRAS:+[$EXTRAS]}"
RUN useradd --create-home --uid 10001 --user-group ctxeval
USER ctxeval
WORKDIR /home/ctxeval
EXPOSE 8000
CMD ["ctxeval", "--help"]
