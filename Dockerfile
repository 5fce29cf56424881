# The Deskstream worker image: `docker compose up --build` uses it for workers and sandboxes.
# A worker needs no extra: `docker build --build-arg PACKAGE=. .` builds an image without the
# sandboxes' dependencies (gRPC server, cryptography, ...); the default includes them.
FROM python:3.11-slim
ARG PACKAGE=.[sandbox]
WORKDIR /app
COPY pyproject.toml README.md ./
COPY app ./app
COPY streams ./streams
COPY schemas ./schemas
COPY connectors ./connectors
COPY sandboxes ./sandboxes
RUN pip install --no-cache-dir "${PACKAGE}" \
    && useradd --system --uid 10001 deskstream
USER deskstream
EXPOSE 6066
CMD ["deskstream", "worker"]
