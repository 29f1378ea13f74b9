"""ASE database (SQLite ``.db`` via ase.db): one row per frame, several label sets, provenance kept.

One label set is stored as the row's energy/forces/stress (what ASE tools show); its name is the
key ``lam_label`` (in ``row.data`` when ASE refuses the name as a value, e.g. "0"). Other label sets go in
``row.data["lam_labels"]``; info values that are valid
key-value pairs become searchable keys, the rest go in ``row.data["info"]``. Dataset name and
provenance live in the database metadata.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from lam_lab.data.dataset import Dataset, Provenance
from lam_lab.data.errors import DataError
from lam_lab.data.frame import Frame
from lam_lab.data.io._ase import atoms_to_frame, frame_to_atoms, merge_label
from lam_lab.data.io._common import DEFAULT_LABEL, atomic_file, json_default, keep_only, write_label

EXTENSIONS = (".db",)
_META_KEY = "lam_lab"


def read_asedb(path: Path, label: str | None = None) -> Dataset:
    """All rows of an ASE SQLite database (Å, eV, eV/Å), in id order."""
    import ase.db  # ase.db/ase.io take ~1 s to import: only when a database is used

    frames: list[Frame] = []
    named = False
    db = ase.db.connect(str(path), type="db", create_indices=False)
    meta = db.metadata.get(_META_KEY, {}) if isinstance(db.metadata, dict) else {}
    for row in db.select(sort="id"):
        try:
            frame, has_name = _frame(row, label)
        except DataError as exc:
            raise DataError(exc.message, source=str(path), frame=len(frames), field=exc.field) from None
        except (ValueError, KeyError, TypeError) as exc:
            raise DataError(f"bad row id={row.id}: {exc}", source=str(path), frame=len(frames)) from None
        named |= has_name
        frames.append(frame)
    prov = Provenance.from_dict(meta.get("provenance")) if meta.get("provenance") else Provenance()
    prov.source = str(path)
    ds = Dataset(frames, name=str(meta.get("name") or Path(path).stem), provenance=prov)
    if label is not None and named:
        keep_only(ds, label, path)
    return ds


def _frame(row: Any, label: str | None) -> tuple[Frame, bool]:
    kvp = dict(row.key_value_pairs)
    data = dict(row.data) if row.get("data") is not None else {}
    # the primary label set's name: a searchable key, or in data where ASE refuses the string (e.g. "0")
    primary = str(kvp.pop("lam_label", None) or data.get("lam_label") or label or DEFAULT_LABEL)
    atoms = row.toatoms()
    atoms.info = kvp
    frame = atoms_to_frame(atoms, primary, drop_info=set())
    frame.info.update(data.get("info") or {})  # non-scalar info (lists, dicts) kept as written
    for name, fields in (data.get("lam_labels") or {}).items():
        merge_label(frame, str(name), fields.get("energy"), fields.get("forces"), fields.get("virial"))
    return frame, "lam_label" in row.key_value_pairs or "lam_label" in data


def _kvp_ok(key: str, value: Any) -> bool:
    """True when ASE accepts ``key=value`` as a searchable key-value pair."""
    from ase.db.core import check as _check_kvp

    if isinstance(value, (np.integer, np.floating, np.bool_)):
        value = value.item()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # keys that look like chemical formulas go to data
            _check_kvp({key: value})
    except (ValueError, UserWarning):
        return False
    return key != "lam_label"


def write_asedb(ds: Dataset, path: Path, label: str | None = None) -> None:
    """Write every frame and label set to a new ASE SQLite database (atomically)."""
    import ase.db

    primary = write_label(ds, label)
    with atomic_file(path) as tmp:
        db = ase.db.connect(str(tmp), type="db", append=False)
        with db:
            for frame in ds:
                atoms, extras = frame_to_atoms(frame, primary)
                atoms.info = {}
                kvp: dict[str, Any] = {}
                info: dict[str, Any] = {}
                for k, v in frame.info.items():
                    if _kvp_ok(k, v):
                        kvp[k] = v.item() if isinstance(v, np.generic) else v
                    else:
                        info[k] = v
                data: dict[str, Any] = {}
                if primary is not None and primary in frame.labels:
                    # ASE refuses number-like strings ("0", "True") as values: those names go in data
                    (kvp if _kvp_ok("label", primary) else data)["lam_label"] = primary
                if info:
                    data["info"] = info
                if extras:
                    data["lam_labels"] = {
                        name: {k: v for k, v in (("energy", lab.energy), ("forces", lab.forces),
                                                 ("virial", lab.virial)) if v is not None}
                        for name, lab in extras.items()
                    }
                db.write(atoms, key_value_pairs=kvp, data=data)
        db.metadata = {_META_KEY: {"name": ds.name, "provenance": _plain(ds.provenance.to_dict(), json_default)}}


def _plain(obj: Any, default: Any) -> Any:
    """A JSON round trip so numpy values in provenance settings do not upset the database encoder."""
    return json.loads(json.dumps(obj, default=default))
