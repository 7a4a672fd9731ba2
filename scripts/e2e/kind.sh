#!/usr/bin/env bash
# The end-to-end suite against a real Envoy Gateway in a kind cluster (needs Docker, kind, kubectl, helm):
# the same scenarios (test/e2e/support/scenarios.ts) and the same tests (test/e2e) as the local run, with the
# gateway, the processor (built from processor/Dockerfile) and the fake providers running in the cluster.
#
#   scripts/e2e/kind.sh all        # create, install, images, deploy, test (then `delete` to remove the cluster)
#   scripts/e2e/kind.sh <step>...  # create | install | images | deploy | test | delete
#
# Environment: KIND_CLUSTER (default ai-gateway-e2e), EG_VERSION (default v1.9.3; at least v1.9.3, see
# docs/install.md), KIND_SKIP_CREATE=1 when the cluster exists already (the GitHub workflow creates it).
set -euo pipefail
cd "$(dirname "$0")/../.."

CLUSTER="${KIND_CLUSTER:-ai-gateway-e2e}"
EG_VERSION="${EG_VERSION:-v1.9.3}"
OUT="build/e2e"
PROCESSOR_IMAGE="ai-gateway-processor:e2e"
FAKES_IMAGE="ai-gateway-e2e-fakes:e2e"
EG_NAMESPACE="envoy-gateway-system"

log() { printf '\n== %s\n' "$*"; }

step_create() {
  if [ "${KIND_SKIP_CREATE:-}" = "1" ] || kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
    log "kind cluster $CLUSTER exists"
  else
    log "creating kind cluster $CLUSTER"
    kind create cluster --name "$CLUSTER" --wait 180s
  fi
}

step_install() {
  log "Envoy Gateway $EG_VERSION with the Helm values the example's RateLimitRedis emits"
  npm run synth >/dev/null
  # The example's RateLimitRedis requires a password from Secret redis-auth (key password): Redis reads it in its
  # namespace, Envoy Gateway's rate-limit service (REDIS_AUTH, from the Helm values) in Envoy Gateway's.
  local redis_namespace password
  redis_namespace="$(node -e "const y=require('yaml');const docs=y.parseAllDocuments(require('fs').readFileSync('dist/platform.k8s.yaml','utf8')).map(d=>d.toJSON());const r=docs.find(o=>o&&o.kind==='Deployment'&&/redis/.test(o.metadata.name));process.stdout.write(r.metadata.namespace||'default')")"
  password="$(openssl rand -hex 24)"
  for ns in "$EG_NAMESPACE" "$redis_namespace"; do
    kubectl create namespace "$ns" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
    kubectl -n "$ns" create secret generic redis-auth --from-literal=password="$password" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
  done
  helm upgrade --install eg oci://docker.io/envoyproxy/gateway-helm \
    --version "$EG_VERSION" \
    --namespace "$EG_NAMESPACE" --create-namespace \
    -f dist/envoy-gateway-values.yaml
  kubectl wait --timeout=5m -n "$EG_NAMESPACE" deployment/envoy-gateway --for=condition=Available
}

step_images() {
  log "processor image from processor/Dockerfile, fake providers image"
  local version
  version="$(node -p "require('./package.json').version")"
  docker build -f processor/Dockerfile --build-arg VERSION="$version" -t "$PROCESSOR_IMAGE" .
  mkdir -p "$OUT"
  npx esbuild scripts/e2e/fake-providers.ts --bundle --platform=node --target=node20 --log-level=warning --outfile="$OUT/fake-providers.js"
  docker build -f scripts/e2e/fakes.Dockerfile -t "$FAKES_IMAGE" .
  kind load docker-image --name "$CLUSTER" "$PROCESSOR_IMAGE" "$FAKES_IMAGE"
}

# Waits until Envoy Gateway has created the gateway's proxy Deployment and it is available.
wait_for_envoy() {
  local selector="gateway.envoyproxy.io/owning-gateway-namespace=$1,gateway.envoyproxy.io/owning-gateway-name=$2"
  for _ in $(seq 1 150); do
    if [ -n "$(kubectl -n "$EG_NAMESPACE" get deployment -l "$selector" -o name 2>/dev/null)" ]; then
      kubectl -n "$EG_NAMESPACE" wait --timeout=5m deployment -l "$selector" --for=condition=Available
      return 0
    fi
    sleep 2
  done
  echo "Envoy Gateway created no proxy Deployment for gateway $1/$2" >&2
  kubectl -n "$1" get "gateway/$2" -o yaml >&2 || true
  return 1
}

step_deploy() {
  log "fake providers and the synthesized scenarios"
  rm -rf "$OUT/manifests"
  npx tsx scripts/e2e/cluster-manifests.ts "$OUT/manifests" --processor-image "$PROCESSOR_IMAGE" --fakes-image "$FAKES_IMAGE" >"$OUT/scenarios.env"
  cat "$OUT/scenarios.env"
  kubectl apply --server-side -f "$OUT/manifests/00-fakes.yaml"
  kubectl -n e2e rollout status deployment/e2e-fake-providers --timeout=3m
  for file in "$OUT"/manifests/*.yaml; do
    [ "$(basename "$file")" = "00-fakes.yaml" ] && continue
    kubectl apply --server-side -f "$file"
  done
  while read -r line; do
    case "$line" in
      gateway=*)
        local ref="${line#gateway=}" ns name
        ns="${ref%%/*}"; name="${ref#*/}"; name="${name%%:*}"
        # kind has no load balancer, so the Gateway never gets an address (Programmed stays False with
        # AddressNotAssigned); the suite reaches its Envoy Service through a port-forward instead.
        kubectl -n "$ns" wait --timeout=5m "gateway/$name" --for=condition=Accepted
        wait_for_envoy "$ns" "$name"
        kubectl -n "$ns" wait --timeout=5m deployment -l app.kubernetes.io/name=ai-gateway-processor --for=condition=Available
        ;;
    esac
  done <"$OUT/scenarios.env"
}

PIDS=()
stop_port_forwards() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
}

wait_port() {
  for _ in $(seq 1 100); do
    if (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.2
  done
  echo "port-forward to 127.0.0.1:$1 did not come up" >&2
  return 1
}

step_test() {
  log "the end-to-end suite against the cluster"
  trap stop_port_forwards EXIT
  local urls="" local_port=18080 scenarios
  scenarios="$(sed -n 's/^scenarios=//p' "$OUT/scenarios.env")"
  while read -r line; do
    case "$line" in
      gateway=*)
        local ref="${line#gateway=}" ns name port svc
        ns="${ref%%/*}"; name="${ref#*/}"; port="${name#*:}"; name="${name%%:*}"
        svc="$(kubectl -n "$EG_NAMESPACE" get svc \
          -l "gateway.envoyproxy.io/owning-gateway-namespace=$ns,gateway.envoyproxy.io/owning-gateway-name=$name" \
          -o jsonpath='{.items[0].metadata.name}')"
        kubectl -n "$EG_NAMESPACE" port-forward "svc/$svc" "$local_port:$port" >/dev/null &
        PIDS+=("$!")
        wait_port "$local_port"
        urls="${urls:+$urls,}$ns/$name=http://127.0.0.1:$local_port"
        local_port=$((local_port + 1))
        ;;
    esac
  done <"$OUT/scenarios.env"
  kubectl -n e2e port-forward svc/e2e-fake-providers 9101 9102 9103 9104 9105 9106 9107 9108 9109 >/dev/null &
  PIDS+=("$!")
  wait_port 9109
  E2E_GATEWAY_URLS="$urls" E2E_FAKES_URL="http://127.0.0.1" E2E_SCENARIOS="$scenarios" npx jest "$(pwd)/test/e2e/" --selectProjects constructs
}

step_delete() {
  kind delete cluster --name "$CLUSTER"
}

steps=("$@")
[ "${#steps[@]}" -eq 0 ] && steps=(all)
for step in "${steps[@]}"; do
  case "$step" in
    all) step_create; step_install; step_images; step_deploy; step_test ;;
    create|install|images|deploy|test|delete) "step_$step" ;;
    *) echo "unknown step $step (all | create | install | images | deploy | test | delete)" >&2; exit 2 ;;
  esac
done
