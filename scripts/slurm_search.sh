#!/bin/bash
# A SLURM job array of Optuna workers, all joining one study in one database.
#
#   source .venv/bin/activate        # sbatch passes this environment (and its python) on
#   export QG_STORAGE=postgresql://USER:PASSWORD@DBHOST/qg_studies    # or grpc://PROXYHOST:13000
#   sbatch --array=0-15 scripts/slurm_search.sh [more options of `python -m qgtools.search run`]
#
# Submit from any folder: each task writes its log to logs/<job name>-<array job>_<task>.out
# there (QG_LOGS names another folder), a folder the script creates, since SLURM cannot. Each task
# is one worker (one process, one core). The storage comes from QG_STORAGE, never the command
# line (where the process list would show its password); behind hundreds of tasks put Optuna's
# gRPC proxy in front of the database (docs/cluster.md). Every task uses the same --seed:
# the sampler is seeded from it and each trial's number, which the database hands out once, so
# tasks never repeat each other's configurations. The budget (QG_TRIALS) counts finished trials
# over all tasks: a task that finds it met exits at once, so extra or rerun tasks are harmless,
# and a study ends with at most budget + tasks - 1 finished trials. A task killed by the
# scheduler (time limit, scancel) leaves a running trial that is failed later: by the database
# heartbeat (straight to PostgreSQL), or, through the proxy, by the next task that starts
# (it asks squeue whether the trial's job still runs). Rerun the array to top the study up.
#
# Other settings, from the environment: QG_STUDY (qg-cpu), QG_TRIALS (200), QG_EPOCHS (20),
# QG_SPACE (cpu), QG_DATA (auto), QG_SEED (0), QG_PYTHON (python3 on the PATH).
#
# Adapt the lines below to your cluster: add `#SBATCH --partition=NAME` and
# `#SBATCH --account=NAME` if your site asks for them; --time is one task's limit (a task runs
# trials until the budget is met, so a short limit only means more tasks); --mem: one task (its
# run and its worker process) peaked at 0.8 GB of summed PSS on the cpu space, and SLURM counts
# resident memory, shared libraries once per process, so keep 2G or more. A GPU variant: `#SBATCH --gres=gpu:1` (and the partition that has
# them), `--cpus-per-task=4`; each task then trains on its GPU.
#SBATCH --job-name=qg-hpo
#SBATCH --cpus-per-task=1
#SBATCH --mem=4G
#SBATCH --time=02:00:00
set -euo pipefail

# SLURM opened its output file (slurm-%A_%a.out unless --output says otherwise) before this line;
# from here the task writes to its own log in logs/, and SLURM's file, still empty, is removed.
# Only SLURM's: the file is removed only when scontrol names it as this job's StdOut, so that
# `bash scripts/slurm_search.sh > mine.log` off a cluster keeps mine.log.
stdout_now=$(readlink -f "/proc/$$/fd/1" || true)
slurm_out=""
if [ -n "${SLURM_JOB_ID:-}" ] && [ -n "$stdout_now" ] && command -v scontrol >/dev/null \
  && scontrol show job -o "$SLURM_JOB_ID" 2>/dev/null | tr ' ' '\n' \
  | grep -xF "StdOut=$stdout_now" >/dev/null; then
  slurm_out=$stdout_now
fi
logs=${QG_LOGS:-${SLURM_SUBMIT_DIR:-$PWD}/logs}
mkdir -p "$logs"
log=$logs/${SLURM_JOB_NAME:-qg-hpo}-${SLURM_ARRAY_JOB_ID:-${SLURM_JOB_ID:-0}}_${SLURM_ARRAY_TASK_ID:-0}.out
exec >"$log" 2>&1
if [ -n "$slurm_out" ] && [ -f "$slurm_out" ] && [ ! -s "$slurm_out" ] && [ "$slurm_out" != "$(readlink -f "$log")" ]; then
  rm -f "$slurm_out"
fi

: "${QG_STORAGE:?set QG_STORAGE to the study database URL (export QG_STORAGE=postgresql://...)}"
PYTHON=${QG_PYTHON:-python3}
if ! "$PYTHON" -c "import qgtools" 2>/dev/null; then
  echo "$PYTHON cannot import qgtools: activate the project's environment before sbatch" \
    "(source .venv/bin/activate), or set QG_PYTHON=/path/to/.venv/bin/python." >&2
  exit 2
fi
echo "Task ${SLURM_ARRAY_TASK_ID:-0} of job ${SLURM_ARRAY_JOB_ID:-${SLURM_JOB_ID:-?}} on $(hostname) at $(date -Is)"
export OMP_NUM_THREADS=1
export TQDM_MININTERVAL=${TQDM_MININTERVAL:-60}  # the progress bar: a line a minute in the log
exec "$PYTHON" -m qgtools.search run --study "${QG_STUDY:-qg-cpu}" --data "${QG_DATA:-auto}" \
  --space "${QG_SPACE:-cpu}" --trials "${QG_TRIALS:-200}" --max-epochs "${QG_EPOCHS:-20}" \
  --workers 1 --seed "${QG_SEED:-0}" "$@"
