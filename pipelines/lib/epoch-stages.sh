# The stages of one validator epoch, sourced (never run) by every driver that runs them:
# pipelines/epoch.sh (one box, in order), pipelines/slurm/ (one job per group of stages, the students as
# a job array), pipelines/parallel/ (GNU parallel on one box or over ssh) and pipelines/reproduce.sh. The
# drivers only decide where and when a stage runs; what it reads, what it writes and when it is skipped
# is written here once, so an epoch gives the same artifacts — and the same verdict bytes — whichever
# driver ran it.
#
# The rule of every stage: it writes one artifact in DIR/epoch-N/, named by what produced it, which
# appears only when complete (NAME.part, renamed); a stage whose artifact exists is skipped. Every stage
# run appends one line to DIR/epoch-N/timings.jsonl (docs/FORMATS.md): its wall seconds, whether it was
# cached and its exit status.

# epoch_header_help SCRIPT: a driver's --help is its header comment (up to `set -euo`).
epoch_header_help() { sed -n '2,/^set -euo/p' "$1" | sed -e '$d' -e 's/^# \{0,1\}//'; }

# The options every driver takes (the drivers print this in their --help).
epoch_options_help() {
  cat <<'USAGE'
Options:
  --work DIR               working directory (artifacts, state, lock)            [required]
  --commitments FILE       commitment records (JSON lines)                        [required]
  --teacher DIR            teacher checkpoint directory                           [required]
  --block N --block-hash HEX   the epoch's block and its hash (seed of the prompts) [required]
  --count N                prompts per epoch (40)
  --max-new-tokens N       teacher continuation length (512)
  --vocab-size N           vocabulary every model must have (248320)
  --max-params N           parameter limit (5300000000)
  --epsilon X              relative margin a challenger must beat the king by (0.01)
  --policy FILE            the judge's rules as data (docs/FORMATS.md "Judge policy"): its prompts,
                           max_new_tokens, temperature, max_params and vocab_size replace the five
                           options above (not given with them); the judge runs under it; kept as
                           DIR/epoch-N/policy.json, which reproduce.sh and later stages use
  --threads N              compute threads (SLURM_CPUS_PER_TASK inside a Slurm job, else all cores)
  --bin DIR                where the dl-* tools are (default: swift build --show-bin-path)
USAGE
}

epoch_fail() { echo "epoch: $*" >&2; exit 1; }
epoch_usage_error() { echo "epoch: $* (see --help)" >&2; exit 2; }

# epoch_parse ARGS...: the epoch's options into globals (work commitments teacher block block_hash count
# max_new vocab max_params epsilon policy temperature threads bin corpus). An option it does not know is handed to the
# driver's epoch_driver_option NAME VALUE (if the driver defines one; it returns 1 for "not mine").
epoch_parse() {
  work="" commitments="" teacher="" block="" block_hash="" count=40 max_new=512 vocab=248320
  max_params=5300000000 epsilon=0.01 threads=${SLURM_CPUS_PER_TASK:-$(nproc)} bin="${DISTIL_BIN:-}" corpus=()
  policy="" temperature="" rules_given=()
  while (($#)); do
    [[ "$1" != -* || $# -ge 2 ]] || epoch_usage_error "$1 needs a value"
    case "$1" in
      --work) work=${2-}; shift 2 ;;
      --commitments) commitments=${2-}; shift 2 ;;
      --teacher) teacher=${2-}; shift 2 ;;
      --block) block=${2-}; shift 2 ;;
      --block-hash) block_hash=${2-}; shift 2 ;;
      --count) count=${2-}; rules_given+=("$1"); shift 2 ;;
      --max-new-tokens) max_new=${2-}; rules_given+=("$1"); shift 2 ;;
      --vocab-size) vocab=${2-}; rules_given+=("$1"); shift 2 ;;
      --max-params) max_params=${2-}; rules_given+=("$1"); shift 2 ;;
      --epsilon) epsilon=${2-}; rules_given+=("$1"); shift 2 ;;
      --policy) policy=${2-}; shift 2 ;;
      --threads) threads=${2-}; shift 2 ;;
      --bin) bin=${2-}; shift 2 ;;
      -*)
        if declare -F epoch_driver_option >/dev/null && epoch_driver_option "$1" "$2"; then
          shift 2
        else
          epoch_usage_error "unknown option $1"
        fi ;;
      *) corpus+=("$1"); shift ;;
    esac
  done
}

# epoch_validate [--no-corpus]: the usage and input checks every driver makes before any work; finds the
# tools and sets e (the epoch's folder). --no-corpus: the caller runs no stage that reads the corpus.
epoch_validate() {
  for v in work commitments teacher block block_hash; do
    [[ -n "${!v}" ]] || epoch_usage_error "--${v//_/-} is required"
  done
  [[ "${1:-}" == --no-corpus ]] || ((${#corpus[@]})) || epoch_usage_error "name at least one corpus shard or directory"
  [[ "$block" =~ ^[0-9]+$ ]] || epoch_usage_error "--block must be a block number, got '$block'"
  [[ "$threads" =~ ^[1-9][0-9]*$ ]] || epoch_usage_error "--threads must be a positive number, got '$threads'"
  [[ -f "$commitments" ]] || epoch_fail "$commitments: no such file"
  [[ -d "$teacher" ]] || epoch_fail "$teacher: no such directory"
  if [[ -z "$bin" ]]; then
    bin="$(cd "$EPOCH_ROOT" && swift build --show-bin-path)" || epoch_fail "no --bin given and swift build --show-bin-path failed"
  fi
  for t in dl-fetch dl-check dl-prompts dl-teacher dl-kl dl-judge; do
    [[ -x "$bin/$t" ]] || epoch_fail "$bin/$t is missing: run scripts/setup.sh (or pass --bin)"
  done
  e="$work/epoch-$block"
  [[ -z "$policy" ]] || epoch_policy_shape
}

# epoch_policy_shape: the epoch's shape from --policy FILE (dl-judge policy --fields), instead of the
# options it replaces.
epoch_policy_shape() {
  local k v fields
  ((${#rules_given[@]} == 0)) || epoch_usage_error "--policy states the rules: not with ${rules_given[*]}"
  [[ -f "$policy" ]] || epoch_fail "$policy: no such file"
  fields=$("$bin/dl-judge" policy --policy "$policy" --fields) || epoch_fail "$policy: not a judge policy"
  while IFS== read -r k v; do
    case "$k" in
      prompts) count=$v ;; max_new_tokens) max_new=$v ;; temperature) temperature=$v ;;
      max_params) max_params=$v ;; vocab_size) vocab=$v ;;
    esac
  done <<< "$fields"
}

# epoch_absolute: paths made absolute, for drivers whose stages run in another folder or on another host
# (a corpus argument that is not a local path — a URL — is kept as it is).
epoch_absolute() {
  local i
  work=$(realpath -m -- "$work"); commitments=$(realpath -- "$commitments"); teacher=$(realpath -- "$teacher")
  [[ -z "$policy" ]] || policy=$(realpath -- "$policy")
  bin=$(realpath -- "$bin"); e="$work/epoch-$block"
  for i in "${!corpus[@]}"; do
    [[ -e "${corpus[$i]}" ]] && corpus[$i]=$(realpath -- "${corpus[$i]}")
  done
  return 0
}

# epoch_args: the options as one array (epoch_argv), to hand a stage to another process or host. Not
# --threads: a stage elsewhere takes the CPUs of its job (SLURM_CPUS_PER_TASK) or host, or the driver's
# own per-task figure.
epoch_args() {
  epoch_argv=(--work "$work" --commitments "$commitments" --teacher "$teacher" --block "$block"
              --block-hash "$block_hash" --bin "$bin")
  if [[ -n "$policy" ]]; then
    epoch_argv+=(--policy "$policy")
  else
    epoch_argv+=(--count "$count" --max-new-tokens "$max_new" --vocab-size "$vocab" --max-params "$max_params" --epsilon "$epsilon")
  fi
  epoch_argv+=("${corpus[@]}")
}

# epoch_lock: an exclusive lock on DIR/.lock for this process's lifetime (fd 9), so that two runs of the
# serial stages (cron) never overlap. Student (kl) tasks take none: each writes only its own files.
# A second run refuses at once with exit 3 (it does not wait: the next cron run comes anyway). The
# tools a run starts inherit fd 9, so a run whose shell was killed keeps the folder locked until its
# last tool has exited; a run killed whole (the machine crashed) holds nothing.
EPOCH_LOCKED=3
epoch_lock() {
  mkdir -p "$work"
  exec 9>"$work/.lock"
  flock -n 9 || { echo "epoch: another epoch run holds $work/.lock; not starting (exit $EPOCH_LOCKED)" >&2; exit "$EPOCH_LOCKED"; }
}

epoch_log() { echo "epoch $block: $*" >&2; }

# epoch_begin [--task]: the epoch's folder; a run of the serial stages removes the epoch's temporaries
# at exit (a killed run's are overwritten by the next). A student task (--task) leaves them alone: the
# other tasks, running at the same time, are writing theirs.
epoch_begin() {
  mkdir -p "$e/kl"
  [[ "${1:-}" == --task ]] || trap 'rm -f "$e"/*.part' EXIT
}

# epoch_metrics_at_exit FILE [--keep-parts]: at exit, whatever happened, the epoch's Prometheus figures
# go to FILE (dl-judge metrics, written atomically; docs/FORMATS.md "Metrics"). The trap takes over
# epoch_begin's clean-up of the temporaries (--keep-parts: a driver whose jobs may still be writing
# them). A failure to write the metrics is logged, never the epoch's exit status.
epoch_metrics_at_exit() {
  EPOCH_METRICS=$1 EPOCH_KEEP_PARTS=${2:-}
  trap epoch_exit_with_metrics EXIT
}
epoch_exit_with_metrics() {
  local rc=$?
  [[ -n "$EPOCH_KEEP_PARTS" ]] || rm -f "$e"/*.part
  "$bin/dl-judge" metrics --epoch "$e" --exit-status "$rc" --out "$EPOCH_METRICS" \
    || epoch_log "could not write the metrics to $EPOCH_METRICS"
  exit "$rc"
}

# epoch_record STAGE MICROSECONDS CACHED EXIT [UID]: one line of timings.jsonl. Array tasks append to it
# at the same time, on a shared filesystem: each line is written whole under a lock on the file.
epoch_record() {
  local line
  line=$(printf '{"stage":"%s",%s"seconds":%d.%03d,"cached":%s,"exit":%d}' "$1" \
    "${5:+\"uid\":$5,}" $(($2 / 1000000)) $((($2 % 1000000) / 1000)) "$3" "$4")
  # A timing that cannot be written (a full disk) is said, never the stage's failure.
  { flock 8; printf '%s\n' "$line" >&8; } 8>>"$e/timings.jsonl" \
    || epoch_log "$e/timings.jsonl: could not append the $1 stage's timing"
}

# epoch_write FILE: stdin into FILE; a write that fails names FILE (dd says "error writing 'FILE'").
epoch_write() { dd of="$1" status=none; }

# Microseconds since the epoch (EPOCHREALTIME's separator follows the locale: any non-digit is dropped).
epoch_now() { echo "${EPOCHREALTIME//[!0-9]/}"; }

# epoch_stage NAME ARTIFACT COMMAND...: runs COMMAND with stdout into ARTIFACT.part, renamed when it
# succeeds; skipped when ARTIFACT exists. (EPOCH_UID, when set, goes into the timing record.)
epoch_stage() {
  local name=$1 out=$2 t0 rc=0; shift 2
  t0=$(epoch_now)
  if [[ -e "$out" ]]; then
    epoch_log "$name${EPOCH_UID:+ (uid $EPOCH_UID)}: $(basename "$out") is cached, skipping"
    epoch_record "$name" $(($(epoch_now) - t0)) true 0 ${EPOCH_UID:-}
    return 0
  fi
  epoch_log "$name${EPOCH_UID:+ (uid $EPOCH_UID)}"
  "$@" > "$out.part" || rc=$?
  if ((rc == 0)); then mv "$out.part" "$out"; else rm -f "$out.part"; fi
  epoch_record "$name" $(($(epoch_now) - t0)) false "$rc" ${EPOCH_UID:-}
  ((rc == 0)) || { epoch_log "$name${EPOCH_UID:+ (uid $EPOCH_UID)} failed (exit $rc)"; return "$rc"; }
}

# epoch_need FILE... STAGE-HINT: a stage run on its own finds the artifacts of the stages before it.
epoch_need() {
  local hint=${!#} f
  for f in "${@:1:$#-1}"; do
    [[ -e "$f" ]] || epoch_fail "$f is missing: $hint"
  done
}

# The number of models the plan scores (0: no teacher or student compute this epoch).
epoch_planned() { local n; n=$(wc -l < "$e/plan.jsonl"); echo $((n)); }

stage_fetch() {
  # fetch-stats.json: what this run downloaded (the metrics' bytes downloaded); not an artifact
  # of the verdict: a rerun over a warm cache writes smaller figures.
  epoch_stage fetch "$e/manifests.jsonl" "$bin/dl-fetch" --stats "$e/fetch-stats.json" "$commitments"
}

stage_check() {
  epoch_need "$e/manifests.jsonl" "run the fetch stage first"
  epoch_stage check "$e/checks.jsonl" "$bin/dl-check" --vocab-size "$vocab" --max-params "$max_params" \
    --teacher-tokenizer "$teacher" --registry "$work/registry.json" "$e/manifests.jsonl"
}

# epoch_newest_judged: the highest block N whose DIR/epoch-N/ holds a verdict (nothing when none).
epoch_newest_judged() {
  local v n newest=""
  for v in "$work"/epoch-*/verdict.json; do
    n=${v%/verdict.json}; n=${n##*/epoch-}
    [[ -e "$v" && "$n" =~ ^[0-9]+$ ]] || continue
    if [[ -z "$newest" ]] || ((10#$n > 10#$newest)); then newest=$n; fi
  done
  echo "$newest"
}

# epoch_state_put EPOCHDIR: DIR/state.json becomes EPOCHDIR/state.json (temporary, rename; a copy that
# fails, a full disk, is removed: the state stays as it was, and the next run copies it again).
epoch_state_put() {
  cp "$1/state.json" "$work/state.json.part" || { rm -f "$work/state.json.part"; return 1; }
  mv "$work/state.json.part" "$work/state.json"
}

# The state across epochs (DIR/state.json) is the newest judged epoch's: the judge commits with the
# rename of verdict.json, and the copy to DIR/state.json follows it. A run killed between the two
# leaves DIR/state.json as that epoch's state-before.json; the next epoch's plan catches it up here
# before freezing its own state-before (only then: a state an operator changed is left as it is).
epoch_state_catch_up() {
  local n before
  n=$(epoch_newest_judged)
  [[ -n "$n" && "$n" != "$block" && -e "$work/epoch-$n/state.json" && -e "$work/epoch-$n/state-before.json" ]] || return 0
  cmp -s "$work/epoch-$n/state.json" "$work/state.json" && return 0
  before=$work/state.json
  [[ -e "$before" ]] || before=<(echo '{}')
  if cmp -s "$work/epoch-$n/state-before.json" "$before"; then
    epoch_log "plan: $work/state.json is still the state epoch $n was judged against: taking epoch $n's judged state first"
    epoch_state_put "$work/epoch-$n"
  fi
}

# The state this epoch is judged against, frozen before the plan, so the judge can be re-run.
stage_plan() {
  epoch_need "$e/checks.jsonl" "run the check stage first"
  if [[ ! -e "$e/state-before.json" ]]; then
    epoch_state_catch_up
    if [[ -e "$work/state.json" ]]; then cp "$work/state.json" "$e/state-before.json.part"; else echo '{}' | epoch_write "$e/state-before.json.part"; fi
    mv "$e/state-before.json.part" "$e/state-before.json"
  fi
  # The epoch keeps the policy it runs under, so its judge and reproduce.sh read the same rules.
  if [[ -n "$policy" && ! -e "$e/policy.json" ]]; then
    cp "$policy" "$e/policy.json.part" && mv "$e/policy.json.part" "$e/policy.json"
  fi
  epoch_rules "$e"
  epoch_stage plan "$e/plan.jsonl" "$bin/dl-judge" plan --checks "$e/checks.jsonl" --state "$e/state-before.json" \
    "${epoch_rule_args[@]}"
}

# epoch_rules EPOCHDIR: the judge's rules flags into epoch_rule_args: the epoch's policy.json if it has
# one, else --epsilon.
epoch_rules() {
  if [[ -e "$1/policy.json" ]]; then epoch_rule_args=(--policy "$1/policy.json"); else epoch_rule_args=(--epsilon "$epsilon"); fi
}

stage_prompts() {
  epoch_need "$e/plan.jsonl" "run the plan stage first"
  (($(epoch_planned))) || return 0
  ((${#corpus[@]})) || epoch_usage_error "name at least one corpus shard or directory"
  epoch_stage prompts "$e/prompts.jsonl" "$bin/dl-prompts" sample --block "$block" --block-hash "$block_hash" \
    --count "$count" "${corpus[@]}"
}

stage_teacher() {
  epoch_need "$e/plan.jsonl" "run the plan stage first"
  (($(epoch_planned))) || return 0
  epoch_need "$e/prompts.jsonl" "run the prompts stage first"
  epoch_stage teacher "$e/teacher.dlt" "$bin/dl-teacher" --model "$teacher" --max-new-tokens "$max_new" \
    ${temperature:+--temperature "$temperature"} --threads "$threads" --block "$block" --block-hash "$block_hash" "$e/prompts.jsonl"
}

# stage_kl_task I: the I-th planned model (1-based) scored into kl/UID.jsonl (dl-kl writes it atomically)
# with its summary line in kl/UID.done. An index past the plan has nothing to do.
#
# A model dl-kl cannot score is a finished task: dl-kl writes its scoring-failure record in place of
# its KL records (docs/FORMATS.md "Scoring failure") and exits 0. A dl-kl killed by a signal (a crash
# the engine should never have, the OOM killer) runs once more; killed again, the model gets a
# failure record of ours (transient: judged as a RETRY, scored again next epoch) and the task is
# finished, so that one model never stops the epoch. Any other failure (exit 1: the teacher stream
# damaged, a full disk) fails the task as before: it is no model's fault.
EPOCH_KL_SIGNALLED=128
stage_kl_task() {
  local i=$1 line uid rc=0 attempt
  epoch_need "$e/plan.jsonl" "run the plan stage first"
  [[ "$i" =~ ^[1-9][0-9]*$ ]] || epoch_usage_error "a student task is a model's 1-based line in plan.jsonl, got '$i'"
  line=$(sed -n "${i}p" "$e/plan.jsonl")
  if [[ -z "$line" ]]; then epoch_log "kl task $i: the plan has $(epoch_planned) models, nothing to do"; return 0; fi
  [[ "$line" =~ \"uid\":([0-9]+) ]] || epoch_fail "$e/plan.jsonl: line $i has no uid"
  uid=${BASH_REMATCH[1]}
  epoch_need "$e/teacher.dlt" "run the teacher stage first"
  for attempt in 1 2; do
    rc=0
    rm -f "$e/kl/$uid.jsonl".tmp-*   # a killed dl-kl's temporary
    # The model's plan line through a pipe, not a temporary file: a kill -9 here leaves nothing behind.
    EPOCH_UID=$uid epoch_stage kl "$e/kl/$uid.done" "$bin/dl-kl" --checks <(printf '%s\n' "$line") \
      --out-dir "$e/kl" --threads "$threads" "$e/teacher.dlt" || rc=$?
    ((rc > EPOCH_KL_SIGNALLED)) || return "$rc"
    epoch_log "kl (uid $uid): dl-kl was killed by signal $((rc - EPOCH_KL_SIGNALLED)) (attempt $attempt of 2)"
  done
  rm -f "$e/kl/$uid.jsonl".tmp-*
  EPOCH_UID=$uid epoch_stage kl "$e/kl/$uid.done" "$bin/dl-kl" --checks <(printf '%s\n' "$line") --out-dir "$e/kl" \
    --record-failure "dl-kl was killed by signal $((rc - EPOCH_KL_SIGNALLED)) twice while scoring it" "$e/teacher.dlt"
}

# stage_kl_all: every planned model in turn (one box); an epoch whose kl.done exists is done.
stage_kl_all() {
  local i n
  epoch_need "$e/plan.jsonl" "run the plan stage first"
  n=$(epoch_planned)
  [[ -e "$e/kl.done" ]] && { epoch_log "kl: kl.done is cached, skipping"; return 0; }
  for ((i = 1; i <= n; i++)); do stage_kl_task "$i"; done
  stage_kl_done
}

# stage_kl_done: every planned model's summary, in plan order, into kl.done — which exists only when
# every student task succeeded; the recheck and the judge wait for it.
stage_kl_done() {
  local n i line
  epoch_need "$e/plan.jsonl" "run the plan stage first"
  n=$(epoch_planned)
  ((n)) || return 0
  [[ -e "$e/kl.done" ]] && return 0
  local summaries=()
  for ((i = 1; i <= n; i++)); do
    line=$(sed -n "${i}p" "$e/plan.jsonl")
    [[ "$line" =~ \"uid\":([0-9]+) ]] || epoch_fail "$e/plan.jsonl: line $i has no uid"
    epoch_need "$e/kl/${BASH_REMATCH[1]}.done" "student task $i (uid ${BASH_REMATCH[1]}) did not finish"
    summaries+=("$e/kl/${BASH_REMATCH[1]}.done")
  done
  # A write that fails (a full disk) leaves no part behind and says which stage stopped.
  if ! cat "${summaries[@]}" | epoch_write "$e/kl.done.part"; then
    rm -f "$e/kl.done.part"
    epoch_fail "kl failed: could not write $e/kl.done"
  fi
  mv "$e/kl.done.part" "$e/kl.done"
}

# Scoring took hours: before the weights are set, every scored model must still be what was checked.
stage_recheck() {
  epoch_need "$e/plan.jsonl" "run the plan stage first"
  (($(epoch_planned))) || return 0
  stage_kl_done
  epoch_stage recheck "$e/recheck.jsonl" "$bin/dl-check" --recheck-only --only "$e/plan.jsonl" "$e/manifests.jsonl"
}

# epoch_judge_into EPOCHDIR OUTDIR: the judge over EPOCHDIR's checks, re-check and state-before, with the
# KL records of OUTDIR/kl, into OUTDIR/state.json and OUTDIR/verdict.json (reproduce.sh: a scratch
# OUTDIR). It reads the state as it was before the epoch, so running it again gives the same verdict.
epoch_judge_into() {
  local src=$1 out=$2 kls recheck=()
  # (Called in an || list, where set -e does not stop a failed copy: each step is checked.)
  cp "$src/state-before.json" "$out/state.json.part" || return
  shopt -s nullglob
  kls=("$out"/kl/*.jsonl)
  shopt -u nullglob
  [[ -e "$src/recheck.jsonl" ]] && recheck=(--recheck "$src/recheck.jsonl")
  epoch_rules "$src"
  "$bin/dl-judge" --checks "$src/checks.jsonl" "${recheck[@]}" --state "$out/state.json.part" --block "$block" \
    "${epoch_rule_args[@]}" --out "$out/verdict.json.part" "${kls[@]}" </dev/null || return
  mv "$out/state.json.part" "$out/state.json" || return
  mv "$out/verdict.json.part" "$out/verdict.json"
}

stage_judge() {
  local t0 rc=0
  epoch_need "$e/checks.jsonl" "$e/state-before.json" "$e/plan.jsonl" "run the check and plan stages first"
  if (($(epoch_planned))); then
    epoch_need "$e/recheck.jsonl" "run the recheck stage first"
  fi
  t0=$(epoch_now)
  if [[ -e "$e/verdict.json" ]]; then
    epoch_log "judge: verdict.json is cached, skipping"
    epoch_record judge $(($(epoch_now) - t0)) true 0
  else
    epoch_log "judge"
    epoch_judge_into "$e" "$e" || rc=$?
    epoch_record judge $(($(epoch_now) - t0)) false "$rc"
    ((rc == 0)) || { epoch_log "judge failed (exit $rc)"; return "$rc"; }
  fi
  # The state across epochs follows the newest judged epoch: re-judging an older one never moves it back.
  local newest
  newest=$(epoch_newest_judged)
  if ((10#$newest > 10#$block)); then
    epoch_log "judge: epoch $newest is newer and judged: $work/state.json stays its state (not moved back to epoch $block's)"
  else
    epoch_state_put "$e"
  fi
  # The report is for people: drawn again at every judge run (cheap), never a reason to fail the epoch.
  "$bin/dl-judge" report --epoch "$e" --out "$e/report.html" || epoch_log "could not write $e/report.html"
}
