"""canonicalize() is byte-identical to rfc8785.dumps, and its fast path is actually taken."""

from __future__ import annotations

import importlib.util
import json
import math
import struct
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from batterytrace.credentials import canonical
from batterytrace.credentials.canonical import canonicalize
from batterytrace.credentials.errors import CanonicalizationError
from hypothesis import given
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parent.parent
EDDSA = ROOT.parent / "shared" / "standards" / "w3c" / "vc-di-eddsa"
JCS_VECTOR = EDDSA / "eddsa-jcs-2022"


def _load_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _bench_credential() -> dict[str, Any]:
    """The fixed 1.5 KB credential of bench/fixtures.py (bench/ is not an installed package)."""
    spec = importlib.util.spec_from_file_location("bench_fixtures", ROOT / "bench" / "fixtures.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.credential_1_5kb()


# --- generated documents -----------------------------------------------------------------

# Every region where JCS and a naive encoder disagree: ASCII controls, DEL, Latin-1, the
# BMP just below and inside private use (U+E000), the specials at U+FFFF, and astral planes.
_interesting_chars = st.one_of(
    st.characters(min_codepoint=0, max_codepoint=0x7F),
    st.characters(min_codepoint=0x80, max_codepoint=0xD7FF),
    st.characters(min_codepoint=0xDFF0, max_codepoint=0xFFFF, exclude_categories=("Cs",)),
    st.characters(min_codepoint=0x10000, max_codepoint=0x10FFFF),
    st.sampled_from('"\\/\b\f\n\r\t\x00\x1f\x7f\u2028\u2029\ue000\uf8ff\ufb33\ufeff\uffff'),
)
_text = st.text(_interesting_chars, max_size=12)

_floats = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    # every decimal magnitude, including both sides of repr's and ECMAScript's notation switches
    st.builds(
        lambda digits, exp: float(f"{digits}e{exp}"),
        st.integers(1, 10**17),
        st.integers(-330, 310),
    ).filter(math.isfinite),
    st.floats(min_value=1e-8, max_value=1e-3),
    st.floats(min_value=1e14, max_value=1e22),
    st.integers(-(2**60), 2**60).map(float),  # integral floats: 912.0 must print as 912
    st.sampled_from([0.0, -0.0, 1e-4, 9.999999999999999e-5, 1e16, 9999999999999998.0, 0.5]),
)
_ints = st.one_of(
    st.integers(-(2**53) - 3, 2**53 + 3),
    st.sampled_from([2**53 - 1, 2**53, -(2**53) + 1, -(2**53), 2**64, -(2**100)]),
    st.integers(),
)
_scalars = st.one_of(st.none(), st.booleans(), _ints, _floats, _text)


def _documents(scalars: st.SearchStrategy[Any], keys: st.SearchStrategy[str]) -> Any:
    return st.recursive(
        scalars,
        lambda children: st.one_of(
            st.lists(children, max_size=5),
            st.dictionaries(keys, children, max_size=5),
        ),
        max_leaves=30,
    )


def _same_as_rfc8785(document: Any) -> None:
    try:
        expected = rfc8785.dumps(document)
    except (rfc8785.CanonicalizationError, TypeError, ValueError, RecursionError):
        with pytest.raises(CanonicalizationError):
            canonicalize(document)
        return
    assert canonicalize(document) == expected


# Documents that the fast path accepts: keys in the BMP (private use included), safe integers,
# non-integral floats of moderate magnitude.
_fast_keys = st.text(
    st.one_of(
        st.characters(max_codepoint=0xFFFF, exclude_categories=("Cs",)),
        st.characters(min_codepoint=0xE000, max_codepoint=0xFFFF, exclude_categories=("Cs",)),
    ),
    max_size=8,
)
_fast_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**53) + 1, 2**53 - 1),
    st.floats(min_value=1e-4, max_value=1e15).filter(lambda x: not x.is_integer()),
    st.floats(min_value=-1e15, max_value=-1e-4).filter(lambda x: not x.is_integer()),
    st.integers(-(2**53) + 1, 2**53 - 1).map(float),  # integral: encoded as ints
    _text,
)


# Values at the edges of what the fast path accepts, each family equally likely.
_edge_ints = st.sampled_from([2**53 - 1, 2**53, 2**53 + 1, -(2**53) + 1, -(2**53), -(2**53) - 1])
_edge_floats = st.one_of(
    st.integers(-(2**60), 2**60).map(float),
    st.floats(min_value=1e-8, max_value=1e-3),
    st.floats(min_value=1e14, max_value=1e22),
    st.sampled_from([0.0, -0.0, 1e-4, 9.999999999999999e-5, -5e-5, 1e-6, 1e-7, 1e16, 1e21]),
)
# Keys on both sides of U+E000 and of the astral planes, so that one object often holds keys
# whose UTF-16 and code-point orders disagree.
_edge_objects = st.dictionaries(
    st.text(st.sampled_from("a\ud7ff\ue000\uffff\U00010000\U0010ffff"), min_size=1, max_size=2),
    _fast_scalars,
    min_size=2,
    max_size=4,
)


@given(_documents(_scalars, _text))
def test_identical_to_rfc8785_on_generated_documents(document: Any) -> None:
    _same_as_rfc8785(document)


@given(
    _documents(_fast_scalars, _fast_keys),
    st.one_of(_edge_ints, _edge_floats, _edge_objects),
)
def test_identical_to_rfc8785_with_one_hard_value(base: Any, probe: Any) -> None:
    # A document the fast path accepts plus one value that may not be: the fast path must
    # notice exactly the values it would get wrong.
    _same_as_rfc8785({"base": base, "probe": probe})
    _same_as_rfc8785([probe, base])


@given(_documents(_fast_scalars, _fast_keys))
def test_fast_path_taken_and_identical(document: Any) -> None:
    assert canonical._fast_canonical(document) == rfc8785.dumps(document)


_lone_surrogates = st.integers(0xD800, 0xDFFF).map(chr)


@given(st.lists(st.one_of(_lone_surrogates, st.sampled_from("a\U0001f600\ue000")), max_size=4))
def test_lone_surrogates_rejected_like_rfc8785(chars: list[str]) -> None:
    text = "".join(chars)
    _same_as_rfc8785({text: [text]})
    _same_as_rfc8785({"k": text})


def _nested(depth: int) -> Any:
    document: Any = "leaf"
    for level in range(depth):
        document = {"d": document} if level % 2 else [document, {}, []]
    return document


def test_deep_nesting() -> None:
    document = _nested(300)
    assert canonical._fast_canonical(document) == rfc8785.dumps(document)


def test_deeper_than_the_walk_bound_takes_fallback() -> None:
    document = _nested(canonical._MAX_DEPTH + 50)
    assert canonical._fast_canonical(document) is None
    assert canonicalize(document) == rfc8785.dumps(document)


def test_too_deep_or_cyclic_is_a_canonicalization_error() -> None:
    deep: Any = []
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(CanonicalizationError):
        canonicalize(deep)
    cyclic_list: list[Any] = [1]
    cyclic_list.append(cyclic_list)
    cyclic_dict: dict[str, Any] = {"a": [1.5, "x"]}
    cyclic_dict["a"].append({"back": cyclic_dict})
    for cyclic in (cyclic_list, cyclic_dict):
        assert canonical._fast_canonical(cyclic) is None
        with pytest.raises(CanonicalizationError):
            canonicalize(cyclic)


@pytest.mark.parametrize(
    "document",
    [
        2**53,
        -(2**53),
        float("nan"),
        float("inf"),
        {1: "integer key"},
        {None: "null key"},
        {"set": {1, 2}},
        b"bytes",
        "lone \ud800 surrogate",
        {"k\udfff": 1},
    ],
)
def test_rejects_what_rfc8785_rejects(document: Any) -> None:
    with pytest.raises(CanonicalizationError):
        canonicalize(document)


# --- fast path coverage ------------------------------------------------------------------


def test_bench_credential_takes_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    document = _bench_credential()
    expected = rfc8785.dumps(document)
    monkeypatch.setattr(canonical.rfc8785, "dumps", _no_fallback)
    assert canonicalize(document) == expected


def _no_fallback(document: Any) -> bytes:
    raise AssertionError("fast path expected")


@pytest.mark.parametrize(
    "document",
    [
        {"n": 1e-5},
        {"n": 1e16},
        {"n": 2.0**53 + 2},
        {"\ue000": 1, "\U0001f600": 2},
        {"a": (1, 2)} | {"n": 2**53},
        [True, 1, 1.5, "x", {"a": {"b": 1e21}}],
    ],
)
def test_fallback_cases_are_detected(document: Any) -> None:
    assert canonical._fast_canonical(document) is None
    _same_as_rfc8785(document)


@pytest.mark.parametrize(
    "document",
    [{"n": 912.0}, {"n": -0.0}, [0.5, 3.0, {"m": -(2.0**53 - 1)}], {"t": (2.0, 0.25)}],
)
def test_integral_floats_take_fast_path_as_ints(document: Any) -> None:
    """ECMAScript writes an integral double below 2^53 as its integer (912.0 -> 912)."""
    assert canonical._fast_canonical(document) == rfc8785.dumps(document)
    assert not canonical.compact_is_canonical(document)  # json.dumps would write "912.0"


def test_bmp_private_use_keys_take_fast_path() -> None:
    # In the BMP, UTF-16 order is code-point order: U+E000..U+FFFF need no fallback.
    document = {"\uffff": 1, "\ue000": {"\uf8ff": 2, "z": 3}, "\u00e9": 4, "a": "\U0001f600"}
    expected = '{"a":"\U0001f600","\u00e9":4,"\ue000":{"z":3,"\uf8ff":2},"\uffff":1}'
    assert canonical._fast_canonical(document) == expected.encode("utf-8")
    assert rfc8785.dumps(document) == expected.encode("utf-8")


def test_tuples_take_fast_path_as_lists() -> None:
    document = {"t": (1, "x", (None, 0.5)), "l": []}
    assert canonical._fast_canonical(document) == b'{"l":[],"t":[1,"x",[null,0.5]]}'
    assert rfc8785.dumps(document) == b'{"l":[],"t":[1,"x",[null,0.5]]}'


def test_str_subclass_takes_fallback() -> None:
    class Name(str):
        pass

    assert canonical._fast_canonical({Name("b"): 1, "a": Name("x")}) is None
    assert canonicalize({Name("b"): 1, "a": Name("x")}) == b'{"a":"x","b":1}'


# --- RFC 8785 and W3C vectors ------------------------------------------------------------


def test_rfc8785_section_3_2_2_example() -> None:
    text = (
        '{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],'
        ' "string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/",'
        ' "literals": [null, true, false]}'
    )
    expected = (
        '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
        '"string":"\u20ac$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
    )
    assert canonicalize(json.loads(text)) == expected.encode("utf-8")


def test_rfc8785_section_3_2_3_sorting() -> None:
    document = {
        "\u20ac": "Euro Sign",
        "\r": "Carriage Return",
        "\ufb33": "Hebrew Letter Dalet With Dagesh",
        "1": "One",
        "\U0001f600": "Emoji: Grinning Face",
        "\u0080": "Control",
        "\u00f6": "Latin Small Letter O With Diaeresis",
    }
    order = [json.loads(b"{" + part + b"}") for part in canonicalize(document)[1:-1].split(b",")]
    assert [next(iter(item.values())) for item in order] == [
        "Carriage Return",
        "One",
        "Control",
        "Latin Small Letter O With Diaeresis",
        "Euro Sign",
        "Emoji: Grinning Face",
        "Hebrew Letter Dalet With Dagesh",
    ]


APPENDIX_B = [
    ("0000000000000000", "0"),
    ("8000000000000000", "0"),
    ("0000000000000001", "5e-324"),
    ("8000000000000001", "-5e-324"),
    ("7fefffffffffffff", "1.7976931348623157e+308"),
    ("ffefffffffffffff", "-1.7976931348623157e+308"),
    ("4340000000000000", "9007199254740992"),
    ("c340000000000000", "-9007199254740992"),
    ("4430000000000000", "295147905179352830000"),
    ("44b52d02c7e14af5", "9.999999999999997e+22"),
    ("44b52d02c7e14af6", "1e+23"),
    ("44b52d02c7e14af7", "1.0000000000000001e+23"),
    ("444b1ae4d6e2ef4e", "999999999999999700000"),
    ("444b1ae4d6e2ef4f", "999999999999999900000"),
    ("444b1ae4d6e2ef50", "1e+21"),
    ("3eb0c6f7a0b5ed8c", "9.999999999999997e-7"),
    ("3eb0c6f7a0b5ed8d", "0.000001"),
    ("41b3de4355555553", "333333333.3333332"),
    ("41b3de4355555554", "333333333.33333325"),
    ("41b3de4355555555", "333333333.3333333"),
    ("41b3de4355555556", "333333333.3333334"),
    ("41b3de4355555557", "333333333.33333343"),
    ("becbf647612f3696", "-0.0000033333333333333333"),
    ("43143ff3c1cb0959", "1424953923781206.2"),
]


@pytest.mark.parametrize(("ieee754", "expected"), APPENDIX_B)
def test_rfc8785_appendix_b_numbers(ieee754: str, expected: str) -> None:
    value = struct.unpack(">d", bytes.fromhex(ieee754))[0]
    assert canonicalize([value]) == f"[{expected}]".encode()


@pytest.mark.parametrize("ieee754", ["7fffffffffffffff", "7ff0000000000000"])
def test_rfc8785_appendix_b_nan_and_infinity_rejected(ieee754: str) -> None:
    with pytest.raises(CanonicalizationError):
        canonicalize(struct.unpack(">d", bytes.fromhex(ieee754))[0])


def test_w3c_eddsa_jcs_2022_canonical_document() -> None:
    unsigned = _load_json(EDDSA / "unsigned.json")
    assert unsigned == _unsigned_from_signed()
    expected = (JCS_VECTOR / "canonDocJCS.txt").read_bytes().strip()
    assert canonicalize(unsigned) == expected
    assert canonical._fast_canonical(unsigned) == expected


def _unsigned_from_signed() -> dict[str, Any]:
    signed = _load_json(JCS_VECTOR / "signedJCS.json")
    return {key: value for key, value in signed.items() if key != "proof"}


def test_w3c_eddsa_jcs_2022_canonical_proof_config() -> None:
    config = _load_json(JCS_VECTOR / "proofConfigJCS.json")
    expected = (JCS_VECTOR / "proofCanonJCS.txt").read_bytes().strip()
    assert canonicalize(config) == expected
