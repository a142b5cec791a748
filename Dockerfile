# nodetunnel image: ghcr.io/nodetunnel/nodetunnel:<version>, entrypoint `nodetunnel`
# (`nodetunnel server ...`, `nodetunnel agent ...`; see deploy/ and docs/deploy.md).
# Build: docker build -t ghcr.io/nodetunnel/nodetunnel:$(node -p 'require("./package.json").version') .
# The native heap helper (native/heap-trim.c, optional: docs/operations.md) needs a C compiler,
# which stays in this stage.
FROM node:20-slim AS native
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends gcc libc6-dev >/dev/null
COPY native/ /src/native/
# As scripts/native-build.mjs builds it: with the source's SHA-256 baked in (the module's `source`).
RUN mkdir -p /src/build && cc -O2 -Wall -Wextra -shared -fPIC \
      -DHEAP_TRIM_SOURCE_SHA256="\"$(sha256sum /src/native/heap-trim.c | cut -d' ' -f1)\"" \
      -o /src/build/heap-trim.node /src/native/heap-trim.c

FROM node:20-slim

ENV NODE_ENV=production
WORKDIR /opt/nodetunnel

COPY package.json package-lock.json ./
# esbuild is a runtime dependency: it compiles src/ to dist/ below, which bin/nodetunnel.js runs
# (bin/dist.js). tsx (a dev dependency) is the entry's fallback for sources newer than dist/, which
# cannot happen in the image; it is installed anyway, one directory up in /opt/node_modules, where
# Node's resolution from /opt/nodetunnel/bin finds it, so a hand-edited source still runs.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && npm install --prefix /opt --no-save --ignore-scripts --no-audit --no-fund \
      "tsx@$(node -p 'require("./package-lock.json").packages["node_modules/tsx"].version')" \
 && npm cache clean --force

COPY bin/ ./bin/
COPY scripts/build-dist.mjs scripts/native-build.mjs ./scripts/
COPY src/ ./src/
COPY proto/ ./proto/
COPY tsconfig.json ./
COPY native/ ./native/
COPY --from=native /src/build/heap-trim.node ./build/heap-trim.node
# The entry point's #! line carries the V8 flags (bin/dist.js nodeFlags).
RUN node scripts/build-dist.mjs \
 && chmod 0755 bin/nodetunnel.js && ln -s /opt/nodetunnel/bin/nodetunnel.js /usr/local/bin/nodetunnel

# Non-root by default; the static-pod server overrides this with runAsUser 0 because it writes
# its socket into a root-owned host directory (deploy/kustomize/overlays/server-static-pod).
USER 65532:65532
ENTRYPOINT ["nodetunnel"]
