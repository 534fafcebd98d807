"""Tests of ``composer.catalog``: literal assertion calls found in every supported form."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from composer.catalog import catalog
from composer.properties import PropertyTable


def write(root: Path, name: str, text: str, mode: int = 0o644) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    path.chmod(mode)
    return path


def found(*paths: Path) -> list[tuple[str, str, int]]:
    return [(e["message"], e["display_type"], e["location"]["begin_line"]) for e in catalog(paths)]


PYTHON_STYLES = '''\
import composer_sdk as sdk
import composer_sdk.assertions
import composer_sdk.assertions as sa
import antithesis.assertions
from antithesis import assertions
from antithesis.assertions import reachable, sometimes as sm
from composer_sdk.assertions import always_or_unreachable
from composer_sdk import unreachable as never, always_greater_than

sdk.always(x, "m01")
composer_sdk.assertions.sometimes(x, "m02", {"k": 1})
sa.always_some({"a": x}, "m03")
antithesis.assertions.reachable("m04")
assertions.unreachable("m05")
reachable("m06")
sm(x, message="m07")
always_or_unreachable(x, "m08")
never("m09")
always_greater_than(a, b, "m10")
sdk.sometimes_less_than_or_equal_to(a, b, message="m11")
assertions.sometimes_all({"a": x}, "m12")

sdk.always(x, dynamic)            # not a literal: the platform cannot catalog it either
sdk.always(x, f"m{1}")
other.always(x, "not sdk")        # an unrelated module
always(x, "not imported")         # a name never imported
sdk.setup_complete({"x": 1})      # not an assertion
'''


def test_python_import_styles(tmp_path):
    path = write(tmp_path, "driver.py", PYTHON_STYLES)
    assert found(path) == [
        ("m01", "Always", 10), ("m02", "Sometimes", 11), ("m03", "Always", 12), ("m04", "Reachable", 13),
        ("m05", "Unreachable", 14), ("m06", "Reachable", 15), ("m07", "Sometimes", 16),
        ("m08", "AlwaysOrUnreachable", 17), ("m09", "Unreachable", 18), ("m10", "Always", 19),
        ("m11", "Sometimes", 20), ("m12", "Sometimes", 21),
    ]


def test_entry_shape_matches_a_hit_false_declaration(tmp_path):
    write(tmp_path, "d.py", '''\
        from composer_sdk import sometimes
        class Client:
            def put(self):
                sometimes(ok, "put succeeds")
    ''')
    [entry] = catalog([tmp_path])
    assert entry == {
        "condition": False, "must_hit": True, "hit": False, "id": "put succeeds", "message": "put succeeds",
        "display_type": "Sometimes", "assert_type": "sometimes",
        "location": {"file": str(tmp_path / "d.py"), "function": "put", "class": "Client",
                     "begin_line": 4, "begin_column": 0},
    }


def test_import_inside_a_function_counts(tmp_path):
    path = write(tmp_path, "late.py", '''\
        def main():
            sdk.reachable("late import")
            import composer_sdk as sdk
    ''')
    assert found(path) == [("late import", "Reachable", 2)]


def test_extensionless_python_driver_is_scanned(tmp_path):
    write(tmp_path, "drivers/basic/parallel_driver_put", '''\
        #!/usr/bin/env python3
        import composer_sdk as sdk
        sdk.sometimes(True, "driver put")
    ''', mode=0o755)
    write(tmp_path, "drivers/basic/anytime_check.sh", '#!/bin/sh\necho \'sdk.sometimes(x, "shell")\'\n')
    write(tmp_path, "drivers/basic/blob", "\x00\x01binary sdk.always(x, 'no')")
    assert found(tmp_path) == [("driver put", "Sometimes", 3)]


def test_go_java_rust_forms(tmp_path):
    go = write(tmp_path, "main.go", '''\
        package main
        import "github.com/antithesishq/antithesis-sdk-go/assert"
        func f() {
            assert.Always(x > 0, "go always", map[string]any{"x": x})
            assert.Sometimes(strings.Contains(s, ","), "go, sometimes", nil)
            assert.Reachable("go reachable", nil)
            assert.Unreachable(`go raw`, nil)
            assert.AlwaysGreaterThan(a, b, "go gt", nil)
            assert.AlwaysOrUnreachable(
                ok,
                "go multi-line",
                nil,
            )
            assert.Always(x, msg, nil)
        }
    ''')
    java = write(tmp_path, "Main.java", '''\
        import com.antithesis.sdk.Assert;
        class Main {
            void f() {
                Assert.always(x > 0, "java always", details);
                Assert.sometimesLessThan(a, b, "java lt", null);
                Assert.unreachable("java unreachable", null);
            }
        }
    ''')
    rust = write(tmp_path, "src/lib.rs", '''\
        use antithesis_sdk::prelude::*;
        fn f() {
            assert_always!(x > 0, "rust always", &json!({"x": x}));
            antithesis_sdk::assert_sometimes!(ok, "rust sometimes");
            assert_reachable!("rust reachable");
            assert_sometimes_all!(ok, "rust all");
        }
    ''')
    assert found(go) == [
        ("go always", "Always", 4), ("go, sometimes", "Sometimes", 5), ("go reachable", "Reachable", 6),
        ("go raw", "Unreachable", 7), ("go gt", "Always", 8), ("go multi-line", "AlwaysOrUnreachable", 9),
    ]
    assert found(java) == [("java always", "Always", 4), ("java lt", "Sometimes", 5),
                           ("java unreachable", "Unreachable", 6)]
    assert found(rust) == [("rust always", "Always", 3), ("rust sometimes", "Sometimes", 4),
                           ("rust reachable", "Reachable", 5), ("rust all", "Sometimes", 6)]


def test_walk_skips_vcs_caches_state_and_virtualenvs(tmp_path):
    line = 'import composer_sdk as sdk\nsdk.reachable("{}")\n'
    write(tmp_path, "src/keep.py", line.format("kept"))
    for skipped in [".git/hooks/x.py", "__pycache__/x.py", ".composer/runs/1/x.py", ".venv/lib/x.py",
                    "myenv/lib/x.py", "node_modules/x/x.py"]:
        write(tmp_path, skipped, line.format(skipped))
    (tmp_path / "myenv" / "pyvenv.cfg").write_text("home = /usr\n")
    assert [m for m, _, _ in found(tmp_path)] == ["kept"]


def test_broken_files_are_skipped_not_raised(tmp_path):
    write(tmp_path, "a_broken.py", "import composer_sdk as sdk\nsdk.reachable('broken'\n")
    (tmp_path / "b_latin1.py").write_bytes(b"import composer_sdk as sdk\n# \xe9\xff\nsdk.reachable('latin')\n")
    write(tmp_path, "c_good.py", "import composer_sdk as sdk\nsdk.reachable('good')\n")
    write(tmp_path, "d_nul.py", "import composer_sdk as sdk\x00\n")
    assert [m for m, _, _ in found(tmp_path, tmp_path / "does-not-exist")] == ["latin", "good"]


def test_never_hit_assertions_show_as_unreached(tmp_path):
    write(tmp_path, "d.py", '''\
        import composer_sdk as sdk
        sdk.sometimes(x, "never sometimes")
        sdk.reachable("never reachable")
        sdk.always(x, "never always")
        sdk.always_or_unreachable(x, "never optional")
        sdk.unreachable("never unreachable")
        sdk.always(x, "hit always")
    ''')
    table = PropertyTable(catalog([tmp_path]))
    table.add_timeline([{"antithesis_assert": {**catalog([tmp_path])[-1], "hit": True, "condition": True}}])
    assert {p.id: p.status for p in table.properties()} == {
        "never sometimes": "unreached", "never reachable": "unreached", "never always": "unreached",
        "never optional": "pass", "never unreachable": "pass", "hit always": "pass",
    }
    assert {p.id for p in table.failing()} == {"never sometimes", "never reachable", "never always"}


def test_agrees_with_the_official_scanner(tmp_path):
    scanner = pytest.importorskip("antithesis.catalog._scanner")
    source = "\n".join(line for line in PYTHON_STYLES.splitlines() if "sdk" not in line)
    ours = [(e["id"], e["display_type"], e["location"]["begin_line"])
            for e in catalog([write(tmp_path, "d.py", source)])]
    theirs = [(a.id, a.kind.value, a.location.begin_line) for a in scanner.scan_source(source, "d.py")]
    # the official scanner reads positional messages only; we also read message=...
    assert [o for o in ours if o[0] != "m07"] == theirs
    assert [o[0] for o in ours] == ["m04", "m05", "m06", "m07", "m12"]


_functions = st.sampled_from([
    ("always", 1), ("sometimes", 1), ("always_or_unreachable", 1), ("reachable", 0), ("unreachable", 0),
    ("always_less_than", 2), ("sometimes_greater_than_or_equal_to", 2), ("always_some", 1), ("sometimes_all", 1),
])


@settings(max_examples=50)
@given(calls=st.lists(st.tuples(_functions, st.text(), st.booleans()), max_size=6))
def test_every_literal_message_is_found(tmp_path_factory, calls):
    root = tmp_path_factory.mktemp("gen")
    lines = ["import composer_sdk as sdk"]
    for (name, position), message, as_keyword in calls:
        args = ["x"] * position
        args.append(f"message={message!r}" if as_keyword else repr(message))
        lines.append(f"sdk.{name}({', '.join(args)})")
    path = write(root, "gen.py", "\n".join(lines) + "\n")
    assert [(e["message"], e["location"]["begin_line"]) for e in catalog([path])] == [
        (message, i + 2) for i, (_, message, _) in enumerate(calls)
    ]
    os.remove(path)
