from __future__ import annotations

import gzip
import hashlib
import io
import json
import uuid
from itertools import islice
from pathlib import Path
from typing import Any

import pytest
from upath import UPath

from airflow_provider_anyfast.core.records.source import SourceItem, iter_source, record_id


def write_lines(path: Any, lines: list[bytes], *, gz: bool = False) -> Any:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = b"".join(lines)
    with path.open("wb") as stream:
        stream.write(gzip.compress(data) if gz else data)
    return path


def jl(*values: Any) -> list[bytes]:
    return [json.dumps(v).encode() + b"\n" for v in values]


def test_list_and_tuple_yield_each_element_as_is() -> None:
    records = [{"a": 1}, "not a mapping", None]
    items = list(iter_source(records))
    assert items == [
        SourceItem(0, {"a": 1}, None, None),
        SourceItem(1, "not a mapping", None, None),
        SourceItem(2, None, None, None),
    ]
    assert [i.value for i in iter_source(({"b": 2},))] == [{"b": 2}]


@pytest.mark.parametrize("bad", ["s3://bucket/in.jsonl", {"a": 1}, 42])
def test_other_types_are_refused_naming_the_parameter(bad: Any) -> None:
    with pytest.raises(TypeError, match="records must be a list or tuple") as info:
        list(iter_source(bad))
    assert type(bad).__name__ in str(info.value)
    if isinstance(bad, str):
        assert "turn a URI into a path" in str(info.value)


def test_missing_path_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "in.jsonl"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        list(iter_source(missing))


def test_jsonl_file_with_blank_lines_crlf_and_bom(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "in.jsonl",
        [b'\xef\xbb\xbf{"n": 1}\r\n', b"\n", b"   \n", b'{"n": 2}\n', b"\r\n", b"[3]"],
    )
    items = list(iter_source(path))
    assert [(i.position, i.value, i.problem) for i in items] == [
        (0, {"n": 1}, None),
        (1, {"n": 2}, None),
        (2, [3], None),
    ]
    # Blank lines take no position but still count for the line numbers in origins.
    assert [i.origin for i in items] == [f"{path}:1", f"{path}:4", f"{path}:6"]


def test_bad_utf8_and_bad_json_lines_are_problems_not_crashes(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "in.jsonl",
        [b'{"n": 1}\n', b'{"n": "\xff\xfe"}\n', b'{"n": 3,}\n', b'{"n": 4}\n'],
    )
    items = list(iter_source(path))
    assert [i.position for i in items] == [0, 1, 2, 3]
    assert items[0].value == {"n": 1} and items[3].value == {"n": 4}
    utf8, json_bad = items[1], items[2]
    assert utf8.value is None and utf8.origin == f"{path}:2"
    assert utf8.problem is not None and utf8.problem.startswith(f"line 2 of {path} is not valid UTF-8")
    assert json_bad.value is None and json_bad.origin == f"{path}:3"
    assert json_bad.problem is not None and json_bad.problem.startswith(f"line 3 of {path} is not valid JSON: ")


def test_folder_is_read_in_name_order_recursively_skipping_hidden_and_other_files(tmp_path: Path) -> None:
    root = tmp_path / "in"
    write_lines(root / "b.ndjson", jl("b1", "b2"))
    write_lines(root / "a.jsonl", jl("a1"))
    write_lines(root / "c" / "x.json", jl("c/x1"))
    write_lines(root / "c" / "a.jsonl.gz", jl("c/a1", "c/a2"), gz=True)
    write_lines(root / "d.jsonl", jl("d1"))
    write_lines(root / "_SUCCESS", [b"not records\n"])
    write_lines(root / "_temporary" / "part.jsonl", jl("temp"))
    write_lines(root / ".hidden.jsonl", jl("hidden"))
    write_lines(root / "notes.txt", [b"not json\n"])
    write_lines(root / "e.csv.gz", [b"a,b\n"], gz=True)
    items = list(iter_source(root))
    assert [i.value for i in items] == ["a1", "b1", "b2", "c/a1", "c/a2", "c/x1", "d1"]
    assert [i.position for i in items] == list(range(7))
    assert items[3].origin == f"{root / 'c' / 'a.jsonl.gz'}:1"
    assert all(i.problem is None for i in items)


def test_gzip_file_and_truncated_gzip(tmp_path: Path) -> None:
    good = write_lines(tmp_path / "good.jsonl.gz", jl(*range(1000)), gz=True)
    assert [i.value for i in iter_source(good)] == list(range(1000))

    compressed = gzip.compress(b"".join(jl(*range(20000))))
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(compressed[: len(compressed) // 2])
    items = list(iter_source(cut))
    *records, last = items
    assert len(records) > 100 and [i.value for i in records] == list(range(len(records)))
    assert last.value is None and last.position == len(records)
    assert last.problem is not None and f"{cut} is not a readable gzip file" in last.problem

    not_gzip = write_lines(tmp_path / "plain.jsonl.gz", jl(1))
    (item,) = iter_source(not_gzip)
    assert item.position == 0 and item.problem is not None and "not a readable gzip file" in item.problem


class CountingPath:
    """A path-like wrapper around a real file that counts the bytes read from it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = path.name
        self.bytes_read = 0

    def exists(self) -> bool:
        return self.path.exists()

    def is_dir(self) -> bool:
        return False

    def iterdir(self) -> Any:
        return iter(())

    def joinpath(self, *parts: str) -> Any:
        return self.path.joinpath(*parts)

    def open(self, mode: str) -> io.BufferedReader:
        outer = self
        raw = self.path.open("rb", buffering=0)

        class Counting(io.RawIOBase):
            def readable(self) -> bool:
                return True

            def readinto(self, buffer: Any) -> int:
                n = raw.readinto(buffer) or 0
                outer.bytes_read += n
                return n

            def close(self) -> None:
                raw.close()
                super().close()

        return io.BufferedReader(Counting(), buffer_size=64 * 1024)

    def __str__(self) -> str:
        return str(self.path)


@pytest.mark.parametrize("gz", [False, True])
def test_files_are_streamed_not_loaded_whole(tmp_path: Path, gz: bool) -> None:
    pad = [hashlib.sha256(str(n).encode()).hexdigest() for n in range(60_000)]  # barely compressible
    lines = [json.dumps({"n": n, "pad": pad[n]}).encode() + b"\n" for n in range(60_000)]
    name = "big.jsonl.gz" if gz else "big.jsonl"
    path = write_lines(tmp_path / name, lines, gz=gz)
    counting = CountingPath(path)
    first = list(islice(iter_source(counting), 3))
    assert [i.value["n"] for i in first] == [0, 1, 2]
    assert path.stat().st_size > 2_000_000
    assert counting.bytes_read <= 256 * 1024


def test_upath_file_and_memory_folders(tmp_path: Path) -> None:
    file_root = UPath(f"file://{tmp_path}/in")
    write_lines(file_root / "p1.jsonl", jl({"id": 1}, {"id": 2}))
    write_lines(file_root / "p2.jsonl.gz", jl({"id": 3}), gz=True)
    assert [i.value["id"] for i in iter_source(file_root)] == [1, 2, 3]

    mem_root = UPath(f"memory://records-{uuid.uuid4().hex}/in")
    write_lines(mem_root / "z.jsonl", jl("z"))
    write_lines(mem_root / "sub" / "a.jsonl", jl("sub/a"))
    write_lines(mem_root / "_SUCCESS", [b""])
    items = list(iter_source(mem_root))
    assert [i.value for i in items] == ["sub/a", "z"]
    assert items[1].origin == f"{mem_root / 'z.jsonl'}:1"


def test_s3_folder(s3_root: UPath) -> None:
    write_lines(s3_root / "in" / "part-1.jsonl", [b'{"n": 1}\n', b"\xff\n"])
    write_lines(s3_root / "in" / "part-0.jsonl.gz", jl({"n": 0}), gz=True)
    items = list(iter_source(s3_root / "in"))
    assert [(i.position, i.value) for i in items] == [(0, {"n": 0}), (1, {"n": 1}), (2, None)]
    assert (
        items[2].problem
        == f"line 2 of {s3_root / 'in' / 'part-1.jsonl'} is not valid UTF-8 (byte 0: invalid start byte)"
    )
    assert str(items[2].origin).startswith("s3://")
    with pytest.raises(FileNotFoundError):
        list(iter_source(s3_root / "absent"))


def test_record_id_rules() -> None:
    item = SourceItem(4, {"sku": "A-1", "n": 3, "flag": True, "price": 1.5, "none": None}, None, "s3://b/in.jsonl:5")
    assert record_id(item, None) == (4, None)
    assert record_id(item, "sku") == ("A-1", None)
    assert record_id(item, "n") == (3, None)
    rid, problem = record_id(item, "flag")
    assert rid is None and problem == (
        "record at position 4 (s3://b/in.jsonl:5) has field 'flag' of type bool; ids must be strings or integers"
    )
    assert "of type float" in str(record_id(item, "price").problem)
    assert "of type null" in str(record_id(item, "none").problem)
    assert record_id(item, "sku2") == (None, "record at position 4 (s3://b/in.jsonl:5) has no field 'sku2'")

    listed = SourceItem(2, ["not", "a", "mapping"], None, None)
    assert record_id(listed, None) == (2, None)
    assert record_id(listed, "sku") == (
        None,
        "record at position 2 is list, not a JSON object, so it has no field 'sku'",
    )
    broken = SourceItem(9, None, "line 10 of x is not valid JSON: ...", "x:10")
    assert record_id(broken, None).id == 9
    assert (
        record_id(broken, "sku").problem
        == "record at position 9 (x:10) is null, not a JSON object, so it has no field 'sku'"
    )
