# task-mgmt: one image for the app and its workers.
#   docker run … task-mgmt            the app (`task-mgmt serve`, webhooks and API on PORT 3000)
#   docker run … task-mgmt worker     a worker (needs a Docker engine: see deploy/compose.yaml)
# NODE_VERSION picks the Node.js line (20, 22 or 24); the engines field asks for 20.18.1 or newer.
ARG NODE_VERSION=20

# Build stage: the full install brings TypeScript; scripts are skipped here because nothing
# native is needed to compile, and the build runs once the sources are in.
FROM node:${NODE_VERSION}-bookworm AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY tasks ./tasks
RUN npm run build

# Runtime dependencies: `npm ci --omit=dev` with its install scripts (better-sqlite3's native
# module; the full bookworm image has the compilers if no prebuilt binary fits). The project's
# own `prepare` sees no TypeScript here and skips the build: dist/ comes from the build stage.
FROM node:${NODE_VERSION}-bookworm AS deps
WORKDIR /src
COPY package.json package-lock.json ./
COPY scripts/prepare.mjs ./scripts/prepare.mjs
RUN npm ci --omit=dev --no-audit --no-fund

FROM node:${NODE_VERSION}-bookworm-slim AS runtime
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000 \
    METRICS_PORT=9464 \
    DATA_DIR=/var/lib/task-mgmt
WORKDIR /app
COPY --from=deps /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY package.json app.yml ./
COPY bin ./bin
COPY deploy/healthcheck.mjs ./deploy/healthcheck.mjs
# The image's user is node (uid 1000), never root; DATA_DIR is its own.
RUN mkdir -p /var/lib/task-mgmt && chown node:node /var/lib/task-mgmt
USER node
EXPOSE 3000 9464
# GET /healthz of whichever process runs here: the app's on PORT, a worker's on METRICS_PORT.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "/app/deploy/healthcheck.mjs"]
ENTRYPOINT ["node", "/app/bin/task-mgmt.js"]
CMD ["serve"]
