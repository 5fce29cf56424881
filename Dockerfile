# The Deskstream worker image: `docker compose up --build` uses it for workers and sandboxes.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY app ./app
COPY streams ./streams
COPY schemas ./schemas
COPY connectors ./connectors
RUN pip install --no-cache-dir . \
    && useradd --system --uid 10001 deskstream
USER deskstream
EXPOSE 6066
CMD ["deskstream", "worker"]
