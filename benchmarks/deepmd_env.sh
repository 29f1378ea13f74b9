#!/usr/bin/env bash
# Builds benchmarks/.venv-deepmd: DeePMD-kit 3.x (PyTorch backend, pure-PyTorch path) for model_speed.py.
#
# Why this way: deepmd-kit's [torch] extra pins another torch, and its compiled op library refuses
# torch 2.13. So: local CPU torch 2.13 first, the deepmd-kit wheel without deps, its other requirements
# under a torch==2.13.0 constraint, and the op library moved aside (DeePMD-kit then logs
# "Custom OP Enabled: False" and runs plain PyTorch). Nothing here pulls a CUDA torch.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${DEEPMD_VENV:-$HERE/.venv-deepmd}"
VERSION="${DEEPMD_VERSION:-3.2.0}"
PY="${PYTHON:-python3}"

"$PY" -m venv "$VENV"
echo '*' > "$VENV/.gitignore"  # keep the venv out of git whatever the repository's .gitignore says
PIP=("$VENV/bin/pip" install --disable-pip-version-check -q)
CONSTRAINT="$VENV/constraint.txt"
echo "torch==2.13.0" > "$CONSTRAINT"

"${PIP[@]}" "torch==2.13.0"
"${PIP[@]}" --no-deps "deepmd-kit==$VERSION"
# the wheel's non-torch requirements (from its METADATA), plus mpich which its import loads
"${PIP[@]}" -c "$CONSTRAINT" numpy scipy pyyaml dargs h5py wcmatch packaging ml_dtypes \
    "array-api-compat" typing_extensions einops lmdb msgpack mendeleev e3nn mpich

LIB="$("$VENV/bin/python" - <<'EOF'
import importlib.util, pathlib
spec = importlib.util.find_spec("deepmd")
print(pathlib.Path(spec.origin).parent / "lib")
EOF
)"
for so in "$LIB"/libdeepmd_op_pt.so; do
    [ -e "$so" ] && mv "$so" "$so.disabled"
done
"$VENV/bin/python" -c "import deepmd, torch; print('deepmd-kit', deepmd.__version__, 'torch', torch.__version__)"
