"""The label cache packs into compressed archive shards per set, read back when the per-entry files are gone."""

from __future__ import annotations

import numpy as np

from lam_lab.data.frame import Labels
from lam_lab.labelers.cache import CacheEntry, LabelCache, pack


def test_pack_merges_entries_and_the_archive_answers_after_the_files_are_removed(tmp_path):
    cache = LabelCache(tmp_path / "labels")
    forces = np.arange(6.0).reshape(2, 3)
    cache.put("aa" * 32, CacheEntry(Labels(-1.5, forces, None), None, 3.0))
    cache.put("bb" * 32, CacheEntry(None, "SCF did not converge", 1.0))
    assert pack(tmp_path / "labels", remove=True) == [tmp_path / "labels.npz"] and not cache.keys()
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


def test_a_pack_past_the_shard_size_starts_new_shards_and_leaves_the_full_archive_alone(tmp_path):
    rng = np.random.default_rng(0)
    cache = LabelCache(tmp_path / "labels")
    first = {f"{i:064x}": rng.normal(size=(20, 3)) for i in range(10)}
    for key, forces in first.items():
        cache.put(key, CacheEntry(Labels(-1.0, forces, None), None, 1.0))
    assert pack(tmp_path / "labels", remove=True) == [tmp_path / "labels.npz"]
    before = (tmp_path / "labels.npz").read_bytes()
    later = {f"{i:064x}": rng.normal(size=(20, 3)) for i in range(10, 40)}
    for key, forces in later.items():
        cache.put(key, CacheEntry(Labels(-2.0, forces, None), None, 1.0))
    cache.put(next(iter(first)), CacheEntry(Labels(-1.0, first[next(iter(first))], None), None, 1.0))  # held already
    # random forces barely compress: 30 entries (about 1.5 kB each with the zip headers) need several 8 kB shards
    shards = pack(tmp_path / "labels", remove=True, shard_bytes=8000)
    assert len(shards) >= 2 and shards == [tmp_path / f"labels-{i}.npz" for i in range(2, 2 + len(shards))]
    assert (tmp_path / "labels.npz").read_bytes() == before
    assert all(p.stat().st_size <= 1.1 * 8000 for p in shards)
    assert pack(tmp_path / "labels") == []  # nothing new: nothing written
    again = LabelCache(tmp_path / "labels")
    assert len(again) == 40
    for key, forces in {**first, **later}.items():
        assert np.array_equal(again.get(key, 20).labels.forces, forces)
    (tmp_path / "labels.npz").unlink()  # a shard alone still answers for its entries
    only_shards = LabelCache(tmp_path / "labels")
    assert len(only_shards) == 30 and only_shards.get(next(iter(later)), 20).labels.energy == -2.0


def test_json_stage_is_cached_compressed_and_reads_plain_files_of_earlier_builds(tmp_path):
    import json

    from lam_lab.datasets._stages import BuildContext, json_stage, stage_key

    ctx = BuildContext("x", tmp_path, 1, False, 0, False)
    calls = []
    doc = json_stage(ctx, "ts-a", {"k": 1}, lambda: calls.append(1) or {"barrier": 1.5})
    again = json_stage(ctx, "ts-a", {"k": 1}, lambda: calls.append(1) or {"barrier": 9.9})
    assert doc == again == {"barrier": 1.5} and calls == [1]
    assert list((tmp_path / "stages").glob("*.json.gz"))
    assert json_stage(ctx, "ts-b", {"k": 2}, None) is None  # cache-only read of a stage that never ran
    plain = tmp_path / "stages" / f"ts-c-{stage_key('ts-c', {'k': 3})}.json"
    plain.write_text(json.dumps({"barrier": 0.5}))
    assert json_stage(ctx, "ts-c", {"k": 3}, None) == {"barrier": 0.5}


def test_a_large_first_pack_is_sharded_and_a_new_shard_never_overwrites_one(tmp_path):
    rng = np.random.default_rng(1)
    cache = LabelCache(tmp_path / "labels")
    for i in range(20):
        cache.put(f"{i:064x}", CacheEntry(Labels(-1.0, rng.normal(size=(20, 3)), None), None, 1.0))
    first = pack(tmp_path / "labels", remove=True, shard_bytes=8000)
    assert first[0] == tmp_path / "labels.npz" and first[1:] == [tmp_path / f"labels-{i}.npz"
                                                                 for i in range(2, len(first) + 1)]
    first[1].unlink()  # a shard lost from the middle: the next pack still adds after the highest number
    cache.put("ff" * 32, CacheEntry(Labels(-3.0, rng.normal(size=(20, 3)), None), None, 1.0))
    kept = {p: p.read_bytes() for p in first[2:]}
    (new,) = pack(tmp_path / "labels", remove=True, shard_bytes=1)
    assert new == tmp_path / f"labels-{len(first) + 1}.npz"
    assert all(p.read_bytes() == b for p, b in kept.items())
    assert LabelCache(tmp_path / "labels").get("ff" * 32, 20).labels.energy == -3.0
