#!/usr/bin/env bash
# Static checks of the deployment files; no image registry or cluster needed (test/deploy):
#   deploy/compose.yaml  resolved by Compose itself (`docker compose`, or Debian's docker-compose
#                        from scripts/test-deps.sh), with and without the rabbitmq profile
#   deploy/kubernetes    against Kubernetes' OpenAPI schemas (kubernetes-models, ajv) and the
#                        project's rules (probes, resources, non-root, no real key)
#   Dockerfile           stages, user, HEALTHCHECK, npm ci --omit=dev, .dockerignore
# Each check also runs on broken copies and must refuse them. The GitHub workflow builds the
# image and brings the compose file up.
set -euo pipefail
cd "$(dirname "$0")/.."
npx vitest run test/deploy
