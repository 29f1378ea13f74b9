#!/usr/bin/env bash
# The main job on the built-in data: the headless pipeline with small honest settings (≈ 15 min on
# 2 CPU cores): data summary → the shipped multi-task model → fine-tune / Δ-ML on rxn-dft →
# distillation into the student → reactive MD from the Diels–Alder TS → evaluation → report.html.
# Extra arguments go to `lam-lab pipeline` (e.g. --device cuda, or drop to the full settings with
# `.venv/bin/lam-lab pipeline --out DIR`). A re-run skips the stages that are already done.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
.venv/bin/lam-lab pipeline --quick --out lam_lab_runs/pipeline "$@"
