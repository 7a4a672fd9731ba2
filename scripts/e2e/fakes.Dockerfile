# syntax=docker/dockerfile:1.7
# The fake providers of the end-to-end suite as one image, for a kind run (scripts/e2e/kind.sh). The script is
# bundled on the host first:
#   npx esbuild scripts/e2e/fake-providers.ts --bundle --platform=node --target=node20 --outfile=build/e2e/fake-providers.js
#   docker build -f scripts/e2e/fakes.Dockerfile -t ai-gateway-e2e-fakes:e2e .
# Same pinned distroless Node.js base as the processor image.
ARG RUNTIME_IMAGE=gcr.io/distroless/nodejs20-debian12:nonroot@sha256:2cd820156cf039c8b54ae2d2a97e424b6729070714de8707a6b79f20d56f6a9a
FROM ${RUNTIME_IMAGE}
WORKDIR /app
COPY build/e2e/fake-providers.js /app/fake-providers.js
USER 65532:65532
ENTRYPOINT ["/nodejs/bin/node", "/app/fake-providers.js"]
