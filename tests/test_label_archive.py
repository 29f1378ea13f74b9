"""The label cache packs into one compressed file per set, read back when the per-entry files are gone."""

from __future__ import annotations

import numpy as np

from lam_lab.data.frame import Labels
from lam_lab.labelers.cache import CacheEntry, LabelCache, pack


def test_pack_merges_entries_and_the_archive_answers_after_the_files_are_removed(tmp_path):
    cache = LabelCache(tmp_path / "labels")
    forces = np.arange(6.0).reshape(2, 3)
    cache.put("aa" * 32, CacheEntry(Labels(-1.5, forces, None), None, 3.0))
    cache.put("bb" * 32, CacheEntry(None, "SCF did not converge", 1.0))
    archive = pack(tmp_path / "labels", remove=True)
    assert archive == tmp_path / "labels.npz" and archive.is_file() and not cache.keys()
    # a later pack keeps what the archive already holds and adds the new files
    cache.put("cc" * 32, CacheEntry(Labels(2.0, forces, None), None, 1.0))
    pack(tmp_path / "labels", remove=True)
    again = LabelCache(tmp_path / "labels")
    assert len(again) == 3
    hit = again.get("aa" * 32, 2)
    assert hit.labels.energy == -1.5 and np.array_equal(hit.labels.forces, forces) and hit.seconds == 3.0
    assert again.get("bb" * 32, 2).failure == "SCF did not converge"
    assert again.get("cc" * 32, 2).labels.energy == 2.0
    assert again.get("dd" * 32, 2) is None
    assert again.get("aa" * 32, 5) is None  # wrong atom count: a miss, recomputed
