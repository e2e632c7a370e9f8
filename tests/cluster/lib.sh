# shellcheck shell=bash
# Shared functions for tests/cluster/{up,down,ctl,smoke}. Sourced, not run.
#
# A plane lives in one directory (PLANE_DIR) that holds everything of one run:
#   env            KEY=VALUE lines (ports, paths); sourced by ctl/down/smoke
#   kubeconfig     admin (O=system:masters), certificates embedded
#   pki/           per-run CA (+ key), serving cert, admin client cert, front-proxy
#                  CA + client cert, service-account key pair
#   etcd/          etcd data;  kwok-home/  HOME for kwok (no ~/.kwok leaks in)
#   <c>.log <c>.pid   per component c in: etcd apiserver kcm scheduler kwok

COMPONENTS=(etcd apiserver kcm scheduler kwok)
STOP_TIMEOUT=${STALLWATCH_STOP_TIMEOUT:-20}
READY_TIMEOUT=${STALLWATCH_READY_TIMEOUT:-90}
PROG=${PROG:-$(basename "$0")}

log() { echo "$PROG: $*" >&2; }
die() {
	echo "$PROG: error: $*" >&2
	exit 1
}

is_component() {
	local c
	for c in "${COMPONENTS[@]}"; do [[ $1 == "$c" ]] && return 0; done
	return 1
}

# load_env DIR: set PLANE_DIR and source DIR/env.
load_env() {
	[[ -f $1/env ]] || die "$1/env not found (not a plane dir; run up first)"
	# shellcheck disable=SC1091
	source "$1/env"
	export KUBECONFIG
}

kc() { "$BIN/kubectl" --kubeconfig="$KUBECONFIG" "$@"; }

# ---------------------------------------------------------------- ports
# Free ports are picked below the kernel's ephemeral range (so outgoing
# connections never take them) and claimed with mkdir under PORT_CLAIMS so
# that parallel `up`s never pick the same port. down releases the claims.
PORT_CLAIMS=${STALLWATCH_PORT_CLAIMS:-${TMPDIR:-/tmp}/stallwatch-ports}

port_in_use() {
	[[ -n $(ss -Htan "( sport = :$1 )" 2>/dev/null) ]]
}

# A claim is stale when it is older than 60 s (time for a starting plane to
# write its env), the port is not in use, and its owner plane is gone: no env
# naming the port, or no live process from the owner's pid files.
claim_stale() {
	local c=$PORT_CLAIMS/$1 owner age f pid
	age=$(($(date +%s) - $(stat -c %Y "$c" 2>/dev/null || date +%s)))
	((age > 60)) && ! port_in_use "$1" || return 1
	owner=$(cat "$c/owner" 2>/dev/null) || return 0
	[[ -f $owner/env ]] && grep -q "_PORT=$1\$" "$owner/env" || return 0
	for f in "$owner"/*.pid; do
		read -r pid 2>/dev/null <"$f" && [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null && return 1
	done
	return 0
}

# pick_port: print one free, claimed port.
pick_port() {
	local lo hi p i
	read -r lo _ </proc/sys/net/ipv4/ip_local_port_range
	hi=$((lo > 20500 ? lo - 1 : 30999))
	lo=20000
	mkdir -p "$PORT_CLAIMS"
	for ((i = 0; i < 500; i++)); do
		p=$((lo + (RANDOM * 32768 + RANDOM) % (hi - lo + 1)))
		port_in_use "$p" && continue
		if ! mkdir "$PORT_CLAIMS/$p" 2>/dev/null; then
			claim_stale "$p" || continue
			rm -rf "${PORT_CLAIMS:?}/$p"
			mkdir "$PORT_CLAIMS/$p" 2>/dev/null || continue
		fi
		echo "$PLANE_DIR" >"$PORT_CLAIMS/$p/owner"
		echo "$p"
		return 0
	done
	die "no free port found"
}

release_ports() {
	local p
	for p in "$ETCD_PORT" "$ETCD_PEER_PORT" "$APISERVER_PORT" "$KCM_PORT" "$SCHEDULER_PORT" "$KWOK_PORT"; do
		[[ -n $p && $(cat "$PORT_CLAIMS/$p/owner" 2>/dev/null) == "$PLANE_DIR" ]] &&
			rm -rf "${PORT_CLAIMS:?}/$p"
	done
	return 0
}

# ---------------------------------------------------------------- commands
# component_cmd NAME: set CMD to the command line of component NAME.
# audit_policy DIR: writes DIR/audit-policy.yaml (once) and prints its path. Requests of
# service accounts are logged at Metadata level (user, verb, URI, status), everything else not:
# the components and kubectl use the admin certificate, so the log holds only the requests of
# clients a test gave a ServiceAccount token, which is how tests count one client's requests on
# the API server's side.
audit_policy() {
	local f=$1/audit-policy.yaml
	[[ -f $f ]] || cat >"$f" <<-'EOF'
		apiVersion: audit.k8s.io/v1
		kind: Policy
		omitStages: [RequestReceived]
		rules:
		  - level: Metadata
		    userGroups: ["system:serviceaccounts"]
		  - level: None
	EOF
	echo "$f"
}

component_cmd() {
	local d=$PLANE_DIR p=$PLANE_DIR/pki
	# shellcheck disable=SC2054 # the commas are inside one flag value
	local authn=(--authentication-kubeconfig="$KUBECONFIG" --authorization-kubeconfig="$KUBECONFIG"
		--authorization-always-allow-paths=/healthz,/readyz,/livez,/metrics
		--tls-cert-file="$p/serving.crt" --tls-private-key-file="$p/serving.key")
	case $1 in
	etcd)
		CMD=("$BIN/etcd" --name=n0 --data-dir="$d/etcd" --unsafe-no-fsync=true
			--listen-client-urls="http://127.0.0.1:$ETCD_PORT"
			--advertise-client-urls="http://127.0.0.1:$ETCD_PORT"
			--listen-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT"
			--initial-advertise-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT"
			--initial-cluster="n0=http://127.0.0.1:$ETCD_PEER_PORT")
		;;
	apiserver)
		CMD=("$BIN/kube-apiserver" --etcd-servers="http://127.0.0.1:$ETCD_PORT"
			--bind-address=127.0.0.1 --secure-port="$APISERVER_PORT"
			--advertise-address=127.0.0.1 --endpoint-reconciler-type=none
			--cert-dir="$p" --tls-cert-file="$p/serving.crt" --tls-private-key-file="$p/serving.key"
			--client-ca-file="$p/ca.crt"
			--service-account-issuer=https://kubernetes.default.svc.cluster.local
			--service-account-key-file="$p/sa.pub" --service-account-signing-key-file="$p/sa.key"
			--service-cluster-ip-range=10.96.0.0/16
			--requestheader-client-ca-file="$p/front-proxy-ca.crt" --requestheader-allowed-names=front-proxy-client
			--requestheader-username-headers=X-Remote-User --requestheader-group-headers=X-Remote-Group
			--requestheader-extra-headers-prefix=X-Remote-Extra-
			--proxy-client-cert-file="$p/front-proxy-client.crt" --proxy-client-key-file="$p/front-proxy-client.key"
			--authorization-mode=RBAC --allow-privileged=true
			--shutdown-send-retry-after=true
			--audit-policy-file="$(audit_policy "$d")" --audit-log-path="$d/audit.log"
			--audit-log-maxsize=200 --audit-log-maxbackup=1
			${FEATURE_GATES:+--feature-gates="$FEATURE_GATES"})
		;;
	kcm)
		CMD=("$BIN/kube-controller-manager" --kubeconfig="$KUBECONFIG" --leader-elect=false
			--bind-address=127.0.0.1 --secure-port="$KCM_PORT" "${authn[@]}"
			--controllers='*'
			--service-account-private-key-file="$p/sa.key" --root-ca-file="$p/ca.crt"
			--cluster-signing-cert-file="$p/ca.crt" --cluster-signing-key-file="$p/ca.key"
			--node-monitor-period=5s --node-monitor-grace-period=40s)
		;;
	scheduler)
		CMD=("$BIN/kube-scheduler" --kubeconfig="$KUBECONFIG" --leader-elect=false
			--bind-address=127.0.0.1 --secure-port="$SCHEDULER_PORT" "${authn[@]}")
		;;
	kwok)
		CMD=(env HOME="$d/kwok-home" "$BIN/kwok" --kubeconfig="$KUBECONFIG"
			--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake
			--node-lease-duration-seconds=40 --cidr=10.244.0.0/16 --node-ip=127.0.0.1
			--server-address="127.0.0.1:$KWOK_PORT" --config="$KWOK_STAGES")
		;;
	*) die "unknown component $1 (one of: ${COMPONENTS[*]})" ;;
	esac
}

health_url() {
	case $1 in
	etcd) echo "http://127.0.0.1:$ETCD_PORT/health" ;;
	apiserver) echo "https://127.0.0.1:$APISERVER_PORT/readyz" ;;
	kcm) echo "https://127.0.0.1:$KCM_PORT/healthz" ;;
	scheduler) echo "https://127.0.0.1:$SCHEDULER_PORT/readyz" ;;
	kwok) echo "http://127.0.0.1:$KWOK_PORT/healthz" ;;
	esac
}

# ---------------------------------------------------------------- processes
# pid_of NAME: print the pid if the component runs (and really is ours).
pid_of() {
	local f=$PLANE_DIR/$1.pid pid state
	[[ -f $f ]] || return 1
	read -r pid <"$f" || return 1
	[[ $pid =~ ^[0-9]+$ && -r /proc/$pid/cmdline ]] || return 1
	# Guard against pid reuse: every command line names the plane dir.
	{ tr '\0' '\n' <"/proc/$pid/cmdline"; } 2>/dev/null | grep -qF -- "$PLANE_DIR/" || return 1
	state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || return 1
	[[ $state != Z && $state != X ]] || return 1
	echo "$pid"
}

start_component() {
	local name=$1 pid pgid i
	if pid=$(pid_of "$name"); then
		die "$name already running (pid $pid)"
	fi
	component_cmd "$name"
	printf '==== %s start: %s\n' "$(date -u +%FT%TZ)" "${CMD[*]}" >>"$PLANE_DIR/$name.log"
	# Not a process-group leader (no job control here), so setsid does not
	# fork: $! is the component's pid and its own process group and session.
	setsid "${CMD[@]}" </dev/null >>"$PLANE_DIR/$name.log" 2>&1 &
	pid=$!
	echo "$pid" >"$PLANE_DIR/$name.pid"
	for ((i = 0; i < 100; i++)); do
		pgid=$(awk '{print $5}' "/proc/$pid/stat" 2>/dev/null) || break
		[[ $pgid == "$pid" ]] && return 0
		sleep 0.02
	done
	die "$name (pid $pid) did not become its own process group; see $PLANE_DIR/$name.log"
}

# wait_ready NAME [TIMEOUT]: poll the health endpoint; fail early if it died.
wait_ready() {
	local name=$1 timeout=${2:-$READY_TIMEOUT} url deadline
	url=$(health_url "$name")
	deadline=$((SECONDS + timeout))
	local gone=0
	while :; do
		# While setsid execs the component, /proc/PID/cmdline can be briefly empty: only
		# three misses in a row (0.6 s) mean the process is really gone.
		if pid_of "$name" >/dev/null; then
			gone=0
		elif ((++gone >= 3)); then
			tail -n 30 "$PLANE_DIR/$name.log" >&2 || true
			die "$name exited; see $PLANE_DIR/$name.log"
		fi
		curl -fsS --max-time 2 --cacert "$PLANE_DIR/pki/ca.crt" "$url" >/dev/null 2>&1 && return 0
		((SECONDS < deadline)) || die "$name not ready after ${timeout}s ($url); see $PLANE_DIR/$name.log"
		sleep 0.2
	done
}

# stop_components NAME...: SIGTERM their process groups, wait up to
# STOP_TIMEOUT s for all of them, then SIGKILL what is left.
stop_components() {
	local name pid deadline left
	local -a pids=()
	for name in "$@"; do
		if pid=$(pid_of "$name"); then
			kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
			pids+=("$name:$pid")
		else
			rm -f "$PLANE_DIR/$name.pid"
		fi
	done
	((${#pids[@]})) || return 0
	deadline=$((SECONDS + STOP_TIMEOUT))
	while :; do
		left=0
		for name in "$@"; do pid_of "$name" >/dev/null && left=1; done
		((left)) || break
		if ((SECONDS >= deadline)); then
			for name in "$@"; do
				if pid=$(pid_of "$name"); then
					log "$name (pid $pid) ignored SIGTERM for ${STOP_TIMEOUT}s; SIGKILL"
					kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
				fi
			done
			sleep 0.2
			break
		fi
		sleep 0.1
	done
	for name in "$@"; do
		pid_of "$name" >/dev/null || rm -f "$PLANE_DIR/$name.pid"
	done
}

# kill_component NAME: SIGKILL its process group (a crash, no graceful shutdown).
kill_component() {
	local pid i
	pid=$(pid_of "$1") || {
		rm -f "$PLANE_DIR/$1.pid"
		return 0
	}
	kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
	for ((i = 0; i < 100; i++)); do
		pid_of "$1" >/dev/null || break
		sleep 0.05
	done
	pid_of "$1" >/dev/null && die "$1 (pid $pid) survived SIGKILL"
	rm -f "$PLANE_DIR/$1.pid"
}

# ---------------------------------------------------------------- nodes
# add_nodes NAME...: create KWOK fake Nodes (annotation kwok.x-k8s.io/node=fake,
# no kwok taint) and wait until they are Ready and carry no node.kubernetes.io/* taint.
add_nodes() {
	create_nodes "$@"
	wait_nodes_usable "$@"
}

# create_nodes NAME...: create the Node objects only (no waiting).
create_nodes() {
	local n
	(($#)) || return 0
	for n in "$@"; do
		cat <<EOF
---
apiVersion: v1
kind: Node
metadata:
  name: $n
  annotations:
    kwok.x-k8s.io/node: fake
  labels:
    kubernetes.io/hostname: $n
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    type: kwok
EOF
	done | kc apply -f - >/dev/null
}

wait_nodes_usable() {
	local n deadline=$((SECONDS + READY_TIMEOUT)) out
	for n in "$@"; do
		while :; do
			out=$(kc get node "$n" -o 'jsonpath={range .status.conditions[?(@.type=="Ready")]}{.status}{end} {.spec.taints[*].key}' 2>/dev/null) || out=
			[[ $out == True* && $out != *node.kubernetes.io/* ]] && break
			((SECONDS < deadline)) || die "node $n not Ready+untainted after ${READY_TIMEOUT}s (state: '$out')"
			sleep 0.2
		done
	done
}
