#!/usr/bin/env bash
# Checks the KurrentDB event store against a real node, for anyone with Docker (the project's
# own machines have none, so CI cannot run this). It:
#   1. starts the compose file's KurrentDB node (with its append size raised, see
#      docker-compose.yml) and waits until it answers;
#   2. runs the event-store contract suite and the claim-recovery tests on it, one test thread;
#   3. kills and restarts the node while a follower waits for events and while a writer
#      appends (crates/store-kurrentdb/tests/restart.rs);
#   4. prints what passed, and stops the node (its data volume is kept: `docker compose down -v`
#      removes it).
#
#   scripts/check-kurrentdb.sh
set -uo pipefail
cd "$(dirname "$0")/.."

URL='kurrentdb://localhost:2113?tls=false'
COMPOSE_FILE="$PWD/docker-compose.yml"
compose() { docker compose -f "$COMPOSE_FILE" "$@"; }
results=()

# Up is not enough: a single node answers /health/live before it has made itself the leader,
# and the tests' first call would be refused; its gossip says when it leads.
wait_for_node() {
    for _ in $(seq 1 120); do
        if curl -fsS http://localhost:2113/gossip 2>/dev/null | grep -q '"state": *"Leader"'; then
            return 0
        fi
        sleep 1
    done
    echo "the KurrentDB node did not come up within 120 s" >&2
    compose logs --tail 50 kurrentdb >&2
    return 1
}

echo "== starting the KurrentDB node"
compose up -d kurrentdb || exit 1
wait_for_node || exit 1

echo "== the contract suite and the claim tests (one test thread)"
if REGISTRY_TEST_KURRENTDB_URL="$URL" cargo test -p registry-store-kurrentdb --test contract \
    -- --test-threads=1; then
    results+=("passed: the event-store contract suite and the claim-recovery tests")
else
    results+=("FAILED: the event-store contract suite or the claim-recovery tests")
fi

echo "== killing and restarting the node under a follower and a writer"
RESTART="docker compose -f '$COMPOSE_FILE' kill kurrentdb >/dev/null && docker compose -f '$COMPOSE_FILE' up -d kurrentdb >/dev/null"
if REGISTRY_TEST_KURRENTDB_URL="$URL" REGISTRY_TEST_KURRENTDB_RESTART="$RESTART" \
    cargo test -p registry-store-kurrentdb --test restart -- --test-threads=1 --nocapture; then
    results+=("passed: two kills of the node, under a waiting follower and under appends")
else
    results+=("FAILED: the restart check")
fi

compose stop kurrentdb >/dev/null
echo
echo "== KurrentDB check"
printf '%s\n' "${results[@]}"
! printf '%s\n' "${results[@]}" | grep -q '^FAILED'
