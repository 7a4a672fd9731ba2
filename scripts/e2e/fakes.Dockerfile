# syntax=docker/dockerfile:1.7
# The fake providers of the end-to-end suite as one image, for a kind run (scripts/e2e/kind.sh). The script is
# bundled on the host first:
#   npx esbuild scripts/e2e/fake-providers.ts --bundle --platform=node --target=node20 --outfile=build/e2e/fake-providers.js
#   docker build -f scripts/e2e/fakes.Dockerfile -t ai-gateway-e2e-fakes:e2e .
# Same pinned distroless Node.js base as the processor image.
ARG RUNTIME_IMAGE=gcr.io/distroless/nodejs22-debian12:nonroot@sha256:13593b7570658e8477de39e2f4a1dd25db2f836d68a0ba771251572d23bb4f8e
FROM ${RUNTIME_IMAGE}
WORKDIR /app
COPY build/e2e/fake-providers.js /app/fake-providers.js
USER 65532:65532
ENTRYPOINT ["/nodejs/bin/node", "/app/fake-providers.js"]
