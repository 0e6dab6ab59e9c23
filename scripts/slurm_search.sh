#!/bin/bash
# A SLURM job array of Optuna workers, all joining one study in one PostgreSQL database.
#
#   export QG_STORAGE=postgresql://USER:PASSWORD@DBHOST/qg_studies   # reachable from the compute nodes
#   sbatch --array=0-15 scripts/slurm_search.sh
#
# Each array task is one worker (one process, one core); each trial's sampler is seeded from --seed
# and the trial's number, so tasks never repeat each other's configurations. The study's
# budget (--trials) counts finished trials over all tasks, so extra or restarted tasks are harmless:
# a task that finds the budget met exits at once. A task killed by the scheduler leaves a running
# trial that the database heartbeat marks failed; rerun the array to top the study up.
#SBATCH --job-name=qg-hpo
#SBATCH --cpus-per-task=1
#SBATCH --mem=4G
#SBATCH --time=02:00:00
#SBATCH --output=logs/qg-hpo-%A_%a.out
set -euo pipefail
: "${QG_STORAGE:?set QG_STORAGE to the study database URL}"
STUDY=${QG_STUDY:-qg-cpu}
source .venv/bin/activate
export OMP_NUM_THREADS=1
# the storage comes from QG_STORAGE itself: no password on the command line (the process list)
python -m qgtools.search run --study "$STUDY" --data "${QG_DATA:-auto}" \
  --space "${QG_SPACE:-cpu}" --trials "${QG_TRIALS:-200}" --max-epochs "${QG_EPOCHS:-20}" \
  --workers 1 --seed $((1000 * SLURM_ARRAY_TASK_ID))
