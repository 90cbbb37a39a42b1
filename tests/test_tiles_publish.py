"""`ledger publish` writes C2SP tlog-tiles; a plain static HTTP server serves them, and an
independent tile client written here from the C2SP text (tlog-tiles, signed-note,
tlog-checkpoint), not from the project's code, reads and verifies them."""

from __future__ import annotations

import base64
import hashlib
import http.server
import threading
import urllib.error
import urllib.request
from functools import partial

import pytest
from batterytrace.api.cli import app
from batterytrace.ledger.log import Ledger, Submission
from batterytrace.ledger.publish import publish_ledger
from batterytrace.ledger.tiles import TileEntryTooLargeError, TileMissingError, TileReader
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from typer.testing import CliRunner

ORIGIN = "ledger.test/tiles"
runner = CliRunner()


# --- an independent C2SP tile client ---------------------------------------------------------


def c2sp_index(n: int) -> str:
    """tlog-tiles: `<N>` as zero-padded 3-digit elements, all but the last starting with x."""
    parts = []
    while True:
        parts.insert(0, f"{n % 1000:03d}")
        n //= 1000
        if n == 0:
            break
    return "/".join(["x" + p for p in parts[:-1]] + parts[-1:])


def c2sp_tile_url(base: str, level, n: int, width: int) -> str:
    return f"{base}/tile/{level}/{c2sp_index(n)}" + ("" if width == 256 else f".p/{width}")


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read()


def open_signed_checkpoint(note: bytes, vkey: str) -> tuple[str, int, bytes]:
    """signed-note + tlog-checkpoint: verify the Ed25519 signature of the key `vkey`
    (name+hexid+base64(0x01||key)), return (origin, size, root)."""
    name, hex_id, key_b64 = vkey.split("+", 2)
    raw = base64.b64decode(key_b64)
    assert raw[0] == 1
    public = raw[1:]
    assert hashlib.sha256(name.encode() + b"\n\x01" + public).digest()[:4].hex() == hex_id
    text = note.decode()
    body, _, sigs = text.rpartition("\n\n")
    body += "\n"
    verified = False
    for line in sigs.rstrip("\n").split("\n"):
        assert line.startswith("\u2014 ")
        sig_name, sig_b64 = line[2:].split(" ")
        sig = base64.b64decode(sig_b64)
        if sig_name == name and sig[:4].hex() == hex_id:
            Ed25519PublicKey.from_public_bytes(public).verify(sig[4:], body.encode())
            verified = True
    assert verified
    origin, size, root = body.split("\n")[:3]
    return origin, int(size), base64.b64decode(root)


def mth(hashes: list[bytes]) -> bytes:
    """RFC 6962 2.1 MTH over leaf hashes (the leaves already hashed)."""
    if len(hashes) == 1:
        return hashes[0]
    k = 1
    while k * 2 < len(hashes):
        k *= 2
    return hashlib.sha256(b"\x01" + mth(hashes[:k]) + mth(hashes[k:])).digest()


def rfc_path(m: int, hashes: list[bytes]) -> list[bytes]:
    """RFC 6962 2.1.1 PATH(m, D[n])."""
    if len(hashes) == 1:
        return []
    k = 1
    while k * 2 < len(hashes):
        k *= 2
    if m < k:
        return [*rfc_path(m, hashes[:k]), mth(hashes[k:])]
    return [*rfc_path(m - k, hashes[k:]), mth(hashes[:k])]


def read_log(base: str, vkey: str) -> tuple[int, bytes, list[bytes], list[bytes]]:
    """Fetch the checkpoint, every level-0 tile and entry bundle, check the entries against
    the leaf hashes, the level >= 1 tiles against the tiles below and the root against the
    checkpoint. Returns (size, root, leaf hashes, entries)."""
    origin, size, root = open_signed_checkpoint(get(f"{base}/checkpoint"), vkey)
    assert origin == ORIGIN
    levels: list[list[bytes]] = []
    level = 0
    while size // 256**level:
        count = size // 256**level
        hashes: list[bytes] = []
        for n in range((count + 255) // 256):
            width = min(256, count - n * 256)
            tile = get(c2sp_tile_url(base, level, n, width))
            assert len(tile) == 32 * width
            hashes += [tile[i:i + 32] for i in range(0, len(tile), 32)]
        levels.append(hashes)
        level += 1
    for lvl in range(1, len(levels)):  # each hash is the MTH of a full tile below
        below = levels[lvl - 1]
        for i, h in enumerate(levels[lvl]):
            assert h == mth(below[i * 256:(i + 1) * 256])
    leaves = levels[0]
    entries: list[bytes] = []
    for n in range((size + 255) // 256):
        width = min(256, size - n * 256)
        data = get(c2sp_tile_url(base, "entries", n, width))
        pos = 0
        while pos < len(data):
            length = int.from_bytes(data[pos:pos + 2], "big")
            entries.append(data[pos + 2:pos + 2 + length])
            pos += 2 + length
    assert len(entries) == size
    for entry, leaf in zip(entries, leaves, strict=True):
        assert hashlib.sha256(b"\x00" + entry).digest() == leaf
    assert mth(leaves) == root
    return size, root, leaves, entries


@pytest.fixture
def static_server(tmp_path):
    root = tmp_path / "mirror"
    root.mkdir()
    handler = partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def _events(n, start=0):
    return [Submission("event", {"n": i}) for i in range(start, start + n)]


# --- tests -------------------------------------------------------------------------------------


def test_published_tiles_verify_with_an_independent_client(tmp_path, static_server):
    out, base = static_server
    home = tmp_path / "home"
    led = Ledger.init(home, None, ORIGIN, "https://ledger.test")
    try:
        led.append(_events(599))  # size 600: full 0/000 and 0/001, 0/002.p/88, 1/000.p/2
        result = runner.invoke(app, ["--home", str(home), "ledger", "publish", "--out",
                                     str(out), "--json"])
        assert result.exit_code == 0, result.output
        assert (out / "tile/0/000").stat().st_size == 8192
        assert (out / "tile/0/002.p/88").exists() and (out / "tile/1/000.p/2").exists()
        assert (out / "tile/entries/002.p/88").exists()
        size, _root, leaves, entries = read_log(base, led.verifier.vkey)
        assert size == 600 and entries == list(led.iter_entry_bytes())
        # the project's proof of an entry verifies against the root computed independently
        proof = led.inclusion_proof(300, 600)
        assert proof == rfc_path(300, leaves)

        # incremental: full tiles are not rewritten, the new partials are written
        full = (out / "tile/0/000").stat()
        led.append(_events(100, 599))
        again = publish_ledger(led, out)
        assert again.previous_size == 600 and again.size == 700
        # 0/002.p/188 and its bundle; 1/000.p/2 is the same tile as before: kept
        assert again.tiles_written == 1 and again.bundles_written == 1 and again.tiles_kept == 1
        assert (out / "tile/0/000").stat().st_mtime_ns == full.st_mtime_ns
        assert read_log(base, led.verifier.vkey)[0] == 700
        assert publish_ledger(led, out).tiles_written == 0  # nothing new: nothing written
        # the project's reader agrees with the independent client
        reader = TileReader(lambda p: (out / p).read_bytes(), 700)
        assert reader.root() == led.root(700)
        assert reader.inclusion_proof(650) == led.inclusion_proof(650, 700)
        assert reader.consistency_proof(600) == led.consistency_proof(600, 700)
    finally:
        led.close()


def test_a_tree_of_256_has_a_level_one_partial_and_no_empty_tiles(tmp_path):
    led = Ledger.init(tmp_path / "home", None, ORIGIN, "https://ledger.test")
    try:
        led.append(_events(255))
        out = tmp_path / "out"
        publish_ledger(led, out)
        files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
        assert files == ["checkpoint", "tile/0/000", "tile/1/000.p/1", "tile/entries/000"]
    finally:
        led.close()


def test_tile_paths_follow_the_spec_example():
    assert c2sp_index(1234067) == "x001/x234/067"
    from batterytrace.ledger.tiles import index_path, tile_path
    assert index_path(1234067) == "x001/x234/067" and index_path(0) == "000"
    assert tile_path(0, 1234067, 112) == "tile/0/x001/x234/067.p/112"


def test_a_lying_mirror_changes_the_root(tmp_path):
    led = Ledger.init(tmp_path / "home", None, ORIGIN, "https://ledger.test")
    try:
        led.append(_events(20))
        out = tmp_path / "out"
        publish_ledger(led, out)
        tile = out / "tile/0/000.p/21"
        data = bytearray(tile.read_bytes())
        data[40] ^= 1
        tile.write_bytes(bytes(data))
        reader = TileReader(lambda p: (out / p).read_bytes(), 21)
        assert reader.root() != led.root(21)

        def missing(path):
            raise TileMissingError(path)

        with pytest.raises(TileMissingError):
            TileReader(missing, 21).root()
    finally:
        led.close()


def test_an_entry_over_64_kib_is_refused(tmp_path):
    led = Ledger.init(tmp_path / "home", None, ORIGIN, "https://ledger.test")
    try:
        led.append([Submission("event", {"blob": "x" * 70000})])
        with pytest.raises(TileEntryTooLargeError):
            publish_ledger(led, tmp_path / "out")
    finally:
        led.close()


def test_the_service_answers_the_published_paths(tmp_path):
    from test_api_support import api_client

    home = tmp_path / "home"
    led = Ledger.init(home, None, ORIGIN, "https://ledger.test")
    try:
        led.append(_events(299))
        publish_ledger(led, tmp_path / "out")
    finally:
        led.close()
    with api_client(home, None) as client:
        files = [p for p in (tmp_path / "out").rglob("*") if p.is_file()]
        assert len(files) == 6  # checkpoint, 0/000, 0/001.p/44, 1/000.p/1, 2 bundles
        for path in files:
            rel = str(path.relative_to(tmp_path / "out"))
            answer = client.get("/" + rel)
            assert answer.status_code == 200 and answer.content == path.read_bytes(), rel
            if rel.startswith("tile/") and ".p/" not in rel:
                assert "immutable" in answer.headers["cache-control"]
        for missing in ("tile/0/002", "tile/0/001", "tile/0/001.p/45", "tile/0/0001",
                        "tile/x000/001", "tile/entries/x001/000", "tile/64/000"):
            assert client.get("/" + missing).status_code == 404, missing
