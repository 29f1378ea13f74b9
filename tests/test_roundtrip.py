"""Everything lam_lab writes, it reads back: property-based round trips over names, notes, label sets,
magnitudes (units) and cells for extxyz, DeePMD npy, ASE databases and lam_lab's own lam-h5."""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import lam_lab as ll  # noqa: E402
from lam_lab.data.dataset import Dataset, LabelProvenance, Provenance  # noqa: E402
from lam_lab.data.frame import Frame, Labels  # noqa: E402

# any text, quotes, backslashes, newlines, "T", "1e0", "%41", JSON and non-ASCII included (no NUL: HDF5 attrs)
TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=24)
NAME = TEXT.filter(lambda s: s.strip() != "")
EXAMPLES = int(__import__("os").environ.get("LAM_LAB_HYPOTHESIS_EXAMPLES", "25"))  # more for a deeper search
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@st.composite
def datasets(draw, one_system: bool = False, one_label: bool = False, full_pbc: bool = False):
    """A small valid Dataset: 1-3 frames, 1-4 atoms on a jittered 1.6 Å grid, optional (triclinic) cells."""
    labels = draw(st.lists(NAME, min_size=1, max_size=1 if one_label else 3, unique=True))
    scale = draw(st.sampled_from([1e-3, 1.0, 1e3, 1e5]))  # energy magnitudes from meV to 1e5 eV
    n = draw(st.integers(1, 4))
    numbers = np.array(draw(st.lists(st.sampled_from([1, 6, 8, 29]), min_size=n, max_size=n)))
    frames, periodic = [], draw(st.booleans())
    for _ in range(draw(st.integers(1, 3))):
        if not one_system:
            numbers = np.array(draw(st.lists(st.sampled_from([1, 6, 8, 29]), min_size=n, max_size=n)))
        jitter = np.array(draw(st.lists(st.floats(-0.3, 0.3), min_size=3 * n, max_size=3 * n))).reshape(n, 3)
        pos = 1.6 * np.stack([np.arange(n), np.arange(n) % 2, np.zeros(n)], axis=1) + jitter + 0.5
        pbc = np.array(draw(st.lists(st.booleans(), min_size=3, max_size=3)))
        if full_pbc:  # one system of the npy layout: all frames periodic or none
            pbc[:] = periodic
        cell = np.zeros((3, 3))
        if pbc.any() or draw(st.booleans()):
            shear = np.array(draw(st.lists(st.floats(-1.0, 1.0), min_size=3, max_size=3)))
            cell = np.diag(np.array(draw(st.lists(st.floats(1.6 * n + 4, 30.0), min_size=3, max_size=3))))
            cell[1, 0], cell[2, 0], cell[2, 1] = shear
        labs = {}
        for name in labels:
            e = draw(st.floats(-1.0, 1.0)) * scale
            f = np.array(draw(st.lists(st.floats(-50, 50), min_size=3 * n, max_size=3 * n))).reshape(n, 3)
            vir = np.array(draw(st.lists(st.floats(-10, 10), min_size=9, max_size=9))).reshape(3, 3) if pbc.all() else None
            vir = None if vir is None else vir + vir.T  # a virial is symmetric (extxyz stores it as a Voigt stress)
            labs[name] = Labels(e, f, vir)
        frames.append(Frame(numbers, pos, cell, pbc, labs, {"note": draw(TEXT)}))
    prov = Provenance(labels={labels[0]: LabelProvenance(draw(NAME), basis=draw(TEXT), settings={"unit": draw(TEXT)})},
                      notes=draw(TEXT), builder=draw(TEXT))
    return Dataset(frames, name=draw(NAME), provenance=prov)


def _roundtrip(ds: Dataset, fmt: str, suffix: str, **kw) -> Dataset:
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # unit hints on random magnitudes are not what is tested here
        path = Path(tmp) / f"x{suffix}"
        ll.data.write(ds, path, format=fmt, **kw)
        return ll.data.read(path, format=fmt)


def _same(a: Dataset, b: Dataset, labels: list[str], rtol: float, atol: float, info: bool = True) -> None:
    assert b.name == a.name and b.provenance.notes == a.provenance.notes
    assert b.provenance.labels.keys() >= {k for k in a.provenance.labels if k in labels}
    assert b.label_sets == labels
    assert len(a) == len(b)
    for fa, fb in zip(a, b):
        np.testing.assert_array_equal(fa.numbers, fb.numbers)
        np.testing.assert_allclose(fb.positions, fa.positions, rtol=rtol, atol=atol)
        np.testing.assert_array_equal(fa.pbc, fb.pbc)
        if fa.is_periodic:
            np.testing.assert_allclose(fb.cell, fa.cell, rtol=rtol, atol=atol)
        if info:
            assert fb.info.get("note") == fa.info["note"]
        for name in labels:
            la, lb = fa.labels[name], fb.labels[name]
            np.testing.assert_allclose(lb.energy, la.energy, rtol=1e-12)  # energies always in full precision
            np.testing.assert_allclose(lb.forces, la.forces, rtol=rtol, atol=atol)
            if la.virial is not None:
                np.testing.assert_allclose(lb.virial, la.virial, rtol=rtol, atol=atol)


@SETTINGS
@given(datasets())
def test_extxyz_roundtrip(ds):
    back = _roundtrip(ds, "extxyz", ".extxyz")
    _same(ds, back, ds.label_sets, rtol=0, atol=1e-7)  # ASE writes positions and forces with 8 decimals
    assert back.provenance.labels[ds.label_sets[0]] == ds.provenance.labels[ds.label_sets[0]]


@SETTINGS
@given(datasets())
def test_lamh5_roundtrip(ds):
    back = _roundtrip(ds, "lam-h5", ".lamh5", precision="float64")
    _same(ds, back, ds.label_sets, rtol=0, atol=0)
    assert back.provenance.to_dict() | {"source": None} == ds.provenance.to_dict() | {"source": None}


@SETTINGS
@given(datasets(one_system=True, one_label=True, full_pbc=True))
def test_deepmd_roundtrip(ds):
    back = _roundtrip(ds, "deepmd/npy", "")
    _same(ds, back, ds.label_sets, rtol=0, atol=0, info=False)  # the npy layout has no per-frame info


@SETTINGS
@given(datasets(), st.sampled_from(["0", "-3", "1.5", "1e3", "nan", "inf", "True", "False", "x"]))
def test_asedb_roundtrip(ds, tag):
    first = ds.label_sets[0]  # number-like strings: ASE refuses them as searchable values, lam_lab keeps them
    rename = (lambda k: tag if k == first else k) if tag not in ds.label_sets else (lambda k: k)  # noqa: E731
    for f in ds:
        f.info["tag"] = tag
        f.labels = {rename(k): v for k, v in f.labels.items()}  # the primary label set named "0", "True", ...
    ds.provenance.labels = {rename(k): v for k, v in ds.provenance.labels.items()}
    back = _roundtrip(ds, "ase-db", ".db")
    _same(ds, back, ds.label_sets, rtol=1e-12, atol=1e-12)  # the virial goes through ASE's stress (÷ volume)
    assert all(f.info["tag"] == tag for f in back)


def test_extxyz_written_by_lam_lab_with_quotes_and_backslashes_reads_back(tmp_path):
    """The reported case: a set whose name and notes hold `"` and `\\` (``data convert`` then ``data info``)."""
    frame = Frame([1, 8], [[0, 0, 0], [0, 0, 0.97]], labels={'x"tb\\2': Labels(-1.5, np.zeros((2, 3)))})
    ds = Dataset([frame], name='rxn "xtb" \\ v2', provenance=Provenance(notes='GFN2 "quick" C:\\runs\nline 2'))
    ll.data.write(ds, tmp_path / "x.extxyz")
    back = ll.data.read(tmp_path / "x.extxyz")
    assert (back.name, back.provenance.notes, back.label_sets) == (ds.name, ds.provenance.notes, ds.label_sets)


@settings(max_examples=300, deadline=None, database=None)
@given(st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
       | st.text(alphabet='TFtfeEinaN01._-/+*()@:#,= "\\%[]{}', max_size=8))
def test_any_text_survives_an_extxyz_comment_line(text):
    """Strings ASE would turn into bools, numbers or arrays, or break on (`=` last, `\\`, newlines), come back."""
    import io

    import ase.io
    from ase import Atoms

    from lam_lab.data.io._common import decode_info, encode_info

    atoms = Atoms("H", positions=[[0, 0, 0]])
    atoms.info = encode_info({"note": text, "lam_label": "x"})
    buf = io.StringIO()
    ase.io.write(buf, atoms, format="extxyz")
    info = dict(ase.io.read(io.StringIO(buf.getvalue()), format="extxyz").info)
    decode_info(info)
    assert info["note"] == text and info["lam_label"] == "x"
