# Sourced by the chaos suites (chaos.sh, chaos-validator.sh). Needs: tmp (the suite's scratch folder),
# points, jobs, the array pids (killed by the suite's cleanup) and a function `trial K` that prints one
# line and fails on a failed trial.

# run_trials: trials 1..points, jobs at a time, each one's output printed in order; sets failed.
run_trials() {
  local k j p
  failed=0
  for ((k = 1; k <= points; k += jobs)); do
    pids=()
    for ((j = k; j < k + jobs && j <= points; j++)); do trial "$j" > "$tmp/trial$j.out" 2>&1 & pids+=($!); done
    for p in "${pids[@]}"; do wait "$p" || failed=$((failed + 1)); done
    pids=()
    for ((j = k; j < k + jobs && j <= points; j++)); do cat "$tmp/trial$j.out"; done
  done
}

# kill_group PID: SIGKILL the process group PID leads (setsid made it), then wait until none of it is
# left. The killed tools may take a moment to be gone (a zombie until reaped counts as gone for the
# temporaries' rule, see FileWriter.isRunning); the rerun starts when none is left, as cron's would.
kill_group() {
  local pid=$1 n=0
  if [[ "$(ps -o pgid= "$pid" 2>/dev/null | tr -d ' ')" == "$pid" ]]; then kill -9 -- "-$pid" 2>/dev/null || true; fi
  wait "$pid" 2>/dev/null || true
  while pgrep -g "$pid" > /dev/null && ((n++ < 500)); do sleep 0.01; done
}
