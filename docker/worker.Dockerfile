# syntax=docker/dockerfile:1
# The orchestrator's worker image: Node 24 runs the TypeScript sources directly (type stripping).
# Build context: the repository root (docker-compose.yml builds it so):
#
#   docker build -f docker/worker.Dockerfile -t recogdrive-worker .
#
# Debian-based on purpose: Temporal's native bridge ships no musl/Alpine build. The same Node
# release as the stage wrapper's (docker/stage-images/Dockerfile says why this one).
FROM node:24.19.0-bookworm-slim
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
# RECOGDRIVE_DATA_DIR is a volume in docker-compose.yml. It has to exist in the image and belong
# to `node`: a new named volume starts as a copy of the image's folder, owner included, and one
# mounted where the image has nothing belongs to root, which the worker cannot write as `node`.
RUN mkdir /data && chown node:node /data
ENV RECOGDRIVE_DATA_DIR=/data
# The image's `node` user, by number: Kubernetes' runAsNonRoot can only verify a numeric user.
USER 1000:1000
CMD ["node", "workers/cli.ts", "worker"]
