# Shell helpers shared by bench/run.sh and bench/run_extract.sh (sourced, not
# run). Each expects `$out`, the run directory, to exist.

# bench_timer_init NOTE: `timer` becomes /usr/bin/time -v (peak RSS of each
# side) when the Debian package `time` is installed; otherwise empty, and
# NOTE says what the summary falls back to.
bench_timer_init() {
    if [ -x /usr/bin/time ] && /usr/bin/time -v true 2>/dev/null; then
        timer=(/usr/bin/time -v)
    else
        timer=()
        echo "note: /usr/bin/time not found (apt-get install time); $1" >&2
    fi
}

# bench_sampler_start: the load average every 5 s into loadavg.log, in the
# background; its pid is `sampler`.
bench_sampler_start() {
    (
        while true; do
            echo "$(date +%s) $(cat /proc/loadavg)"
            sleep 5
        done
    ) >"$out/loadavg.log" &
    sampler=$!
}

# bench_sampler_stop: stops the sampler and writes loadavg-end.txt.
bench_sampler_stop() {
    kill "$sampler" 2>/dev/null || true
    cat /proc/loadavg >"$out/loadavg-end.txt"
}

# run <name> <command…>: stdout → <name>.json, stderr → <name>.log,
# /usr/bin/time → <name>.time, the load average at its start → <name>.loadavg.
run() {
    local name="$1"
    shift
    echo "== $name: $*" >&2
    echo "$(date +%s) $(cat /proc/loadavg)" >"$out/$name.loadavg"
    if [ ${#timer[@]} -gt 0 ]; then
        "${timer[@]}" -o "$out/$name.time" "$@" >"$out/$name.json" 2>"$out/$name.log"
    else
        "$@" >"$out/$name.json" 2>"$out/$name.log"
    fi
}
