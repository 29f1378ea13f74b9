#!/usr/bin/env bash
# Remake the shipped Δ models (GFN2-xTB → ωB97X/6-31G(d)) from the built rxn-dft: three seeds of the three-stage
# recipe of lam_lab/pretrained/delta_model.py, then the committees, then the held-out benchmark.
#
#   scripts/remake_delta.sh data        # rebuild rxn-dft from the committed labels (the set it replaces is kept as
#                                       # data-build/rxn-dft-before-remake.lamh5)
#   scripts/remake_delta.sh seed 0      # stages 1–3 of one seed (0, 1, 2: the committees' members)
#   scripts/remake_delta.sh ship        # the single models from seed SINGLE (default 2), the committees of seeds 0–2
#                                       # (held-out twin first), then delta_loro scores (on the replaced set too)
#   scripts/remake_delta.sh nokin 1     # stages 1–2 of one seed without the kin set (KIN_SET: left out of training
#                                       # and validation), scored: the like-for-like reading of what the kin bring
#
# On 2 cores run two seeds side by side with OMP_NUM_THREADS=1 each. A stage whose run folder has finetuned.pt
# is skipped and one that was stopped continues from its last checkpoint, so a remake resumes where it stopped.
# A remake longer than a machine's stay commits each finished stage's finetuned.pt and delta-card.json (.gitignore
# lets them in; `data` first on a fresh machine, which rebuilds the same set) and removes them once shipped.
# STEPS_SCALE multiplies the recipe's step counts (1.5 for the 2.4× larger rxn-dft of rounds 1 + 2); DRY_RUN=1
# prints the commands instead of running them.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"  # PYTHON: another interpreter
run() { if [[ -n "${DRY_RUN:-}" ]]; then echo "$*"; else "$@"; fi; }
RUN="${RUN:-data-build/delta-cpu/remake}"
SCALE="${STEPS_SCALE:-1.5}"
steps() { $PY -c "print(round($1 * $SCALE))"; }
S1=$(steps 5217) S2=$(steps 4269) S3=$(steps 3688)

stage() {  # stage FOLDER ARGS...: one delta_model run unless FOLDER/finetuned.pt exists; a started one resumes
    local out="$1"; shift
    if [[ -f "$out/finetuned.pt" ]]; then echo "[remake] $out done, skipped"; return; fi
    local more=(); [[ -d "$out" ]] && more=(--resume)  # no checkpoint yet: it starts from step 0
    echo "[remake] $out: delta_model $* ${more[*]}"
    run $PY -m lam_lab.pretrained.delta_model "$@" --batch-atoms 512 --out "$out" "${more[@]}"
}

case "${1:-}" in
  data)
    # the set it replaces kept once, so the new models can be scored on the old labels too (--data)
    before=data-build/rxn-dft-before-remake.lamh5
    [[ -f "$before" ]] || run cp lam_lab/datasets/files/rxn-dft.lamh5 "$before"
    run $PY -m lam_lab.datasets build rxn-dft ;;
  seed)
    s="${2:?seed number}"
    stage "$RUN/stage1-s$s" --steps "$S1" --seed "$s"
    stage "$RUN/stage2-s$s" --pretrained "$RUN/stage1-s$s/finetuned.pt" --steps "$S2" --lr 1e-3 --seed "$s"
    stage "$RUN/stage3-s$s" --pretrained "$RUN/stage2-s$s/finetuned.pt" --splits train,test --steps "$S3" \
        --lr 1e-3 --seed $((s + 1)) ;;
  ship)
    # The single models are one seed, chosen on the val split (the seeds' cards), never on the held-out reactions
    single="${SINGLE:-2}"
    run $PY -m lam_lab.pretrained.delta_model --install-run "$RUN/stage2-s$single" --name lam-chon-delta-heldout
    run $PY -m lam_lab.pretrained.delta_model --install-run "$RUN/stage3-s$single" --name lam-chon-delta
    members() { echo "$RUN/$1-s0/finetuned.pt,$RUN/$1-s1/finetuned.pt,$RUN/$1-s2/finetuned.pt"; }
    run $PY -m lam_lab.pretrained.delta_committee --name lam-chon-delta-heldout-x3 --install --members "$(members stage2)"
    run $PY -m lam_lab.pretrained.delta_committee --name lam-chon-delta-x3 --install \
        --heldout-from lam-chon-delta-heldout-x3 --members "$(members stage3)"
    run $PY benchmarks/delta_loro.py --model lam-chon-delta-heldout --out delta_loro
    run $PY benchmarks/delta_loro.py --model "$(members stage2)" --out delta_loro-committee
    # the same twin on the labels of the set it replaced (the like-for-like reading of the change of labels)
    before=data-build/rxn-dft-before-remake.lamh5
    [[ ! -f "$before" ]] || run $PY benchmarks/delta_loro.py --model lam-chon-delta-heldout --data "$before" \
        --out delta_loro-before-labels ;;
  nokin)
    s="${2:?seed number}"
    kin=$($PY -c "from lam_lab.datasets.reactions import KIN_SET; print(','.join(r.name for r in KIN_SET))")
    stage "$RUN/stage1-s$s-nokin" --steps "$S1" --seed "$s" --exclude "$kin"
    stage "$RUN/stage2-s$s-nokin" --pretrained "$RUN/stage1-s$s-nokin/finetuned.pt" --steps "$S2" --lr 1e-3 \
        --seed "$s" --exclude "$kin"
    run $PY benchmarks/delta_loro.py --model "$RUN/stage2-s$s-nokin/finetuned.pt" --out "delta_loro-nokin-s$s" ;;
  *)
    sed -n '2,15p' "$0"; exit 2 ;;
esac
