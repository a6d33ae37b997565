# dr-sidecar image: `disaster-recovery start-monitoring` as an unprivileged user.
# No configuration and no secret is baked in: mount the config (DR_CONFIG) and
# pass the passwords and the API token as environment variables at run time
# (docker-compose.yml does both).

ARG NODE_IMAGE=node:20.20.2-bookworm-slim

# --- build: dev dependencies, TypeScript, native addon --------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
# better-sqlite3 compiles from source when no prebuilt binary is reachable.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
# --ignore-scripts: the `prepare` script builds, and the sources are not here yet;
# the native addon's own install step runs through `npm rebuild`.
RUN npm ci --no-audit --no-fund --ignore-scripts \
 && npm rebuild better-sqlite3
COPY tsconfig.json ./
COPY src ./src
RUN npx tsc -p tsconfig.json \
 && npm prune --omit=dev --no-audit --no-fund

# --- runtime: production dependencies and the compiled program only --------------
FROM ${NODE_IMAGE} AS runtime
# pg_dump / pg_restore / psql for PostgreSQL backups, restores and data copies
# (Debian 12's client is PostgreSQL 15, the servers' major version).
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-client \
 && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production \
    DR_CONFIG=/etc/dr-sidecar/config.yaml
WORKDIR /app
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist/src ./dist/src
COPY bin ./bin
# The status page's templates, found beside dist/ whatever the working directory.
COPY templates ./templates
# State store and backups live in a volume; the `node` user (uid 1000) owns it.
RUN mkdir -p /var/lib/dr-sidecar/backups /etc/dr-sidecar \
 && chown -R node:node /var/lib/dr-sidecar
VOLUME ["/var/lib/dr-sidecar"]
USER node
EXPOSE 9898
# GET /healthz answers 200 while the process serves; DR_HEALTHZ_URL when the config moves the port.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD node -e "fetch(process.env.DR_HEALTHZ_URL || 'http://127.0.0.1:9898/healthz').then((r) => process.exit(r.status === 200 ? 0 : 1), () => process.exit(1))"
ENTRYPOINT ["node", "--max-semi-space-size=2", "bin/disaster-recovery.js"]
CMD ["start-monitoring"]
