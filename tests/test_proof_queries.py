"""Proof reads cost at most 2 queries each on both engines, counted by a SQLAlchemy
`before_cursor_execute` listener; the proofs equal the in-memory RFC 6962 ones."""

import pytest
from batterytrace.ledger import merkle
from batterytrace.ledger.log import Ledger, Submission
from sqlalchemy import event

ORIGIN = "queries.test/log"
SIZE = 300  # two strata of tiles: level-0 tiles 0 and 1 (the second partial), level-8 tile 0


@pytest.fixture
def built(tmp_path, database_url):
    home = tmp_path / "home"
    led = Ledger.init(home, database_url, ORIGIN, checkpoint_every_batch=False)
    for start in range(1, SIZE, 37):  # uneven batches: partial tiles rewritten as they fill
        led.append([Submission("event", {"n": i}) for i in range(start, min(start + 37, SIZE))])
    leaves = [e.leaf_hash for e in led.iter_entries()]
    led.close()
    assert len(leaves) == SIZE
    return home, database_url, leaves


class Counter:
    def __init__(self, engine):
        self.n = 0
        event.listen(engine, "before_cursor_execute", self)

    def __call__(self, *args):
        self.n += 1


def test_at_most_two_queries_per_proof_with_a_cold_cache(built):
    home, url, leaves = built
    led = Ledger.open(home, url, cache_size=0)  # no tile cache: every proof reads
    count = Counter(led.storage.engine)
    for size in (1, 2, 255, 256, 257, SIZE):
        for index in sorted({0, min(1, size - 1), size // 2, size - 1}):
            before = count.n
            proof = led.tree.inclusion_proof(index, size)
            assert count.n - before <= 2
            assert proof == merkle.inclusion_proof(leaves[:size], index)
        for old in sorted({1, size // 3 or 1, size - 1 or 1, size}):
            before = count.n
            proof = led.tree.consistency_proof(old, size)
            assert count.n - before <= 2
            assert proof == merkle.consistency_proof(leaves[:size], old)
    assert count.n > 0  # the listener does see the proof reads
    led.close()


def test_cached_tiles_answer_without_queries(built):
    home, url, leaves = built
    led = Ledger.open(home, url)
    count = Counter(led.storage.engine)
    led.tree.inclusion_proof(7, SIZE)
    before = count.n
    assert led.tree.inclusion_proof(9, SIZE) == merkle.inclusion_proof(leaves, 9)
    assert count.n == before  # same tiles, already cached
    info = led.tree.cache_info()
    assert 1 <= info["tiles"] <= info["max_tiles"] and info["bytes"] == info["tiles"] * 16320
    led.close()


def test_proofs_see_entries_appended_by_another_process_after_caching(built):
    home, url, leaves = built
    reader = Ledger.open(home, url)
    reader.tree.inclusion_proof(SIZE - 1, SIZE)  # caches the partial right-edge tile
    writer = Ledger.open(home, url)
    writer.append([Submission("event", {"n": i}) for i in range(SIZE, SIZE + 20)])
    leaves = leaves + [e.leaf_hash for e in writer.iter_entries(SIZE)]
    writer.close()
    size = len(leaves)
    assert reader.tree.inclusion_proof(size - 1, size) == merkle.inclusion_proof(leaves, size - 1)
    assert reader.tree.root(size) == merkle.root_hash(leaves)
    reader.close()
