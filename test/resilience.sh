#!/bin/bash
# Prints the resilience summary (docs/reliability.md) from the output of
# the tests `make test-resilience` runs: each test, its outcome, and what
# it reported (recovery times, what was refused).
#   resilience.sh LOG
set -euo pipefail
log=$1
printf '%-40s %-6s %s\n' TEST RESULT REPORTED
awk '
	# A script may name what comes next ("=== a power cut"): the next
	# test is shown with it.
	/^=== / && $2 !~ /^(RUN|PAUSE|CONT|NAME)$/ { phase = substr($0, 5); next }
	/^=== RUN / {
		name = $3
		if (phase != "" && name !~ /\//) { shown[name] = name " (" phase ")"; phase = "" } else shown[name] = name
		notes[name] = ""
	}
	/^    [a-z_]+_test\.go:[0-9]+: / && name != "" {
		line = $0; sub(/^    [a-z_]+_test\.go:[0-9]+: /, "", line)
		notes[name] = notes[name] (notes[name] == "" ? "" : "; ") line
	}
	/^--- (PASS|FAIL|SKIP): / && $3 !~ /\// {
		t = $3; r = $2; sub(/:$/, "", r)
		printf "%-40s %-6s %s\n", shown[t], r, notes[t]
	}
' "$log"
! grep -q '^--- FAIL' "$log"
