#!/usr/bin/env bash
# Build the Pulumi CLI from Pulumi's own Go modules into a cache outside the work tree, and put the
# Python dynamic-provider launcher beside it. Idempotent: a second run (or a second clone on the same
# machine) finds the cached build and returns at once.
#
# Why a wrapper module: `go install github.com/pulumi/pulumi/pkg/v3/cmd/pulumi@vX` is refused because
# pkg/go.mod has `replace` directives (golang/go#44840); a dependency's replaces are ignored, so this
# module requires pkg/v3 and sdk/v3 at one release and builds the CLI's main package from it.
# Flags as in Pulumi's release (.goreleaser.yml: -trimpath, -s -w, the version ldflag, tags
# osusergo,grpcnotrace; CGO_ENABLED=0 as scripts/go-wrapper.sh sets for releases).
# The version lives in one place: go.mod's requirement on github.com/pulumi/pulumi/pkg/v3.
#
# Prints the bin directory on its last line of stdout; progress goes to stderr.
set -euo pipefail
# go.mod and go.sum are complete and committed: never let a build rewrite them.
export GOTOOLCHAIN=local GOWORK=off GOFLAGS=-mod=readonly CGO_ENABLED=0
HERE=$(cd "$(dirname "$0")" && pwd)
cd "$HERE"

say() { printf 'pulumi-cli: %s\n' "$*" >&2; }

# The version, read from go.mod itself: finding a cached build needs neither Go nor a network.
required() { sed -n "s|^[[:space:]]*$1 \(v[^ ]*\).*|\1|p" go.mod | head -1; }
VERSION=$(required github.com/pulumi/pulumi/pkg/v3)
SDK_VERSION=$(required github.com/pulumi/pulumi/sdk/v3)
if [ -z "$VERSION" ] || [ "$VERSION" != "$SDK_VERSION" ]; then
  say "go.mod must require github.com/pulumi/pulumi/pkg/v3 and sdk/v3 at one version" \
      "(found '${VERSION:-none}' and '${SDK_VERSION:-none}')"; exit 2
fi
# Keyed by version and by the exact module graph, so a changed go.sum never reuses a stale build.
KEY="$VERSION-$(cat go.mod go.sum | sha256sum | cut -c1-12)"
CACHE=${AGORA_SNAPSHOTS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/agora-snapshots}
# <root>/bin/pulumi, the layout pulumi.automation.PulumiCommand(root=...) expects.
OUT="$CACHE/pulumi-cli/$KEY"
LAUNCHER=pulumi-resource-pulumi-python

if [ -x "$OUT/bin/pulumi" ] && [ -x "$OUT/bin/$LAUNCHER" ]; then
  say "cached $VERSION at $OUT/bin"
  echo "$OUT/bin"; exit 0
fi
# PULUMI_CLI_CHECK_ONLY=1: only report a cached build (exit 4 when there is none).
if [ -n "${PULUMI_CLI_CHECK_ONLY:-}" ]; then exit 4; fi
command -v go >/dev/null || { say "Go (>= 1.26) is not installed: cannot build the Pulumi CLI"; exit 3; }

say "building the Pulumi CLI $VERSION from Go modules (a cold build takes several minutes on 2 cores)"
START=$(date +%s)
say "downloading modules"
go mod download
TOTAL=$(go list -deps github.com/pulumi/pulumi/pkg/v3/cmd/pulumi | wc -l)
mkdir -p "$CACHE"
TMP=$(mktemp -d "$CACHE/.build.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
chmod 0755 "$TMP"; mkdir "$TMP/bin"
# `go build -v` names each package as it is compiled: count them for progress every 10 %.
set +e
go build -v -trimpath -tags osusergo,grpcnotrace \
  -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$VERSION" \
  -o "$TMP/bin/pulumi" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi 2>&1 \
  | awk -v total="$TOTAL" '
      / / { print > "/dev/stderr"; next }   # a package path has no space; anything else is a message
      { n++; pct = int(100 * n / total); if (pct >= next_pct) {
          printf "pulumi-cli: compiled %d of about %d packages (%d%%)\n", n, total, pct > "/dev/stderr";
          next_pct = pct + 10 } }'
status=${PIPESTATUS[0]}
set -e
[ "$status" -eq 0 ] || { say "go build failed (exit $status); its messages are above"; exit 1; }

# The dynamic-provider launcher ships in the sdk/v3 module (python/dist/); the module cache keeps
# it read-only without the exec bit, and the engine only runs an executable plugin.
SDK_DIR=$(go list -m -f '{{.Dir}}' github.com/pulumi/pulumi/sdk/v3)
install -m 0755 "$SDK_DIR/python/dist/$LAUNCHER" "$TMP/bin/"
"$TMP/bin/pulumi" version >&2
# Move into place in one step, so a concurrent build or an interrupted one never leaves half a tree.
rm -rf "$OUT"; mkdir -p "$(dirname "$OUT")"; mv "$TMP" "$OUT"; trap - EXIT
say "built $VERSION in $(( $(date +%s) - START )) s at $OUT/bin"
echo "$OUT/bin"
