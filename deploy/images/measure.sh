#!/usr/bin/env bash
# Prints the deployment images' sizes and the control plane's start-to-ready
# time (docker run until /readyz answers 200, loopback only), for the
# scratch image and, for comparison, the same binary on the Debian base
# (what a Debian-slim-based image would be; no image can be pulled here).
# Run deploy/images/build.sh first. Usage: deploy/images/measure.sh [runs]
set -euo pipefail
runs="${1:-5}"
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
# The comparison image: the scratch image's binary on courier-base.
cid=$(docker create courier-server:dev)
docker cp "$cid:/courier" "$d/courier" >/dev/null
docker rm -v "$cid" >/dev/null
cat >"$d/Dockerfile" <<'DOCKERFILE'
FROM courier-base:bookworm
RUN useradd --system --uid 65532 --home-dir /data --create-home courier
COPY courier /usr/local/bin/courier
USER 65532:65532
ENV HOME=/data COURIER_DATA_DIR=/data
ENTRYPOINT ["/usr/local/bin/courier"]
CMD ["server"]
DOCKERFILE
docker build -q -t courier-server-debian:measure "$d" >/dev/null 2>&1

echo "| image | size (MB) |"
echo "| --- | --- |"
for img in courier-base:bookworm courier-server:dev courier-server-debian:measure courier-workspace:dev courier-postgres:dev courier-haproxy:dev; do
  printf '| %s | %.1f |\n' "$img" "$(docker image inspect -f '{{.Size}}' "$img" | awk '{print $1/1e6}')"
done

ready() { # ready IMAGE -> ms from docker run to the first 200 of /readyz
  local port name t0 t1
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  name=courier-measure-$RANDOM
  t0=$(date +%s%N)
  docker run -d --rm --name "$name" -p "127.0.0.1:$port:8080" "$1" >/dev/null
  until curl -sf -o /dev/null "http://127.0.0.1:$port/readyz"; do sleep 0.01; done
  t1=$(date +%s%N)
  docker rm -f -v "$name" >/dev/null
  echo $(( (t1 - t0) / 1000000 ))
}
echo
echo "| image | start to ready, ms (median of $runs; min-max) |"
echo "| --- | --- |"
for img in courier-server:dev courier-server-debian:measure; do
  ms=$(for _ in $(seq "$runs"); do ready "$img"; done | sort -n)
  printf '| %s | %s (%s-%s) |\n' "$img" "$(echo "$ms" | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}')" "$(echo "$ms" | head -1)" "$(echo "$ms" | tail -1)"
done
docker rmi courier-server-debian:measure >/dev/null
