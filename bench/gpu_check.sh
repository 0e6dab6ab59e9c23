#!/usr/bin/env bash
# Populations on a GPU: the equivalence tests once, then bench/training_speed.py's population
# table on the GPU, in at most 5 minutes. For a lent GPU machine (the device tool), run from the
# repository root; nothing here runs on the CPU machines or in CI.
#
# The device's python3 has torch, Lightning, numpy and pytest, but not Optuna, which the tests'
# conftest imports. Fetch the wheels here first (Python 3.12, as the device has; see the device
# tool's README for the platform flags), carry ".whl", and install them as its README says:
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#       --platform manylinux2014_x86_64 -d .whl optuna optuna-integration alembic sqlalchemy \
#       colorlog mako greenlet
# The device's Python and torch differ from the pinned ones (3.11, torch 2.13.0 CPU): the script
# prints its own, and figures from it are quoted with them.
set -euo pipefail
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
python3 -c "import sys, torch; print(sys.version.split()[0], torch.__version__, torch.cuda.get_device_name(0))"
# every equivalence test of tests/test_population.py, with "auto" taking the GPU
timeout 120 python3 -m pytest -q -p no:cacheprovider tests/test_population.py
# K up to a few hundred (6 x 1024 is about 150 MB a member; these are 3 hidden layers)
timeout 170 python3 bench/training_speed.py --only population --accelerator cuda \
    --widths 64,256,1024 --sizes 1,32,128,256 --repeats 3
