# onair all-in-one image. Build: docker build -t onair .
# Run: docker run -p 8080:8080 -p 1935:1935 -p 8890:8890/udp -p 40000-40099:40000-40099/udp -e ONAIR_WHIP_ICE_ADDRESSES=<host IP> -v onair-data:/data onair
# (8890/udp is SRT ingest; the UDP range and the host's address are for WHIP publishers: WebRTC media reaches the
# container over them)
FROM node:20-bookworm-slim AS build
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts && npm rebuild better-sqlite3 esbuild
COPY . .
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ffmpeg && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
ENV ONAIR_DATA_DIR=/data ONAIR_WHIP_ICE_PORTS=40000-40099 NODE_ENV=production
RUN mkdir -p /data && chown node:node /data
VOLUME /data
EXPOSE 8080 1935 8890/udp 40000-40099/udp
USER node
CMD ["node", "dist/cli/onair.js", "start"]
