# The orchestrator's worker image: Node 24 runs the TypeScript sources directly (type stripping).
# Debian-based on purpose: Temporal's native bridge ships no musl/Alpine build.
FROM node:24-bookworm-slim
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund
COPY pipeline ./pipeline
COPY workflows ./workflows
COPY activities ./activities
COPY workers ./workers
COPY infra ./infra
COPY docker/simulator ./docker/simulator
COPY docker/stage-wrapper ./docker/stage-wrapper
ENV RECOGDRIVE_DATA_DIR=/data
USER node
CMD ["node", "workers/cli.ts", "worker"]
