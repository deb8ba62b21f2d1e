#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Checks that the documentation cannot drift from the code.

usage:
  docs/check.py snippets --include DIR [--include DIR ...] [--cxx C++]
      Every ```cpp block in the repository's Markdown is compiled (-Wall -Wextra -Werror) or
      is, line for line, a marked region of a source file that the build compiles and runs.
      The comment line before each block says which:
        <!-- snippet: file PATH#NAME -->   the region between `// [NAME]` lines in PATH
            (`| compile: main` after it: compiled as below too, as the body of main())
        <!-- snippet: main | before: CODE -->   compiled as the body of main(), after CODE
        <!-- snippet: toplevel | before: CODE | after: CODE -->   compiled at namespace scope
      A block without such a line fails: every snippet is checked.
  docs/check.py links
      Every relative link in the repository's Markdown names a file or folder that exists
      (and, for a link to a heading of a Markdown file, that heading); the README stays
      within 160 lines.
  docs/check.py spdx
      Every source file starts with its SPDX licence line (after a #! line).

Each prints what it checked and exits 1 on the first kind of failure, naming every case.
"""
import argparse
import functools
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SKIP_DIRS = {".git", "build", "node_modules"}
README_LIMIT = 160
SPDX = "SPDX-License-Identifier: Apache-2.0"

PRELUDE = """\
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <type_traits>
#include <opreg/opreg.hpp>
#include <opreg/strategies.hpp>
"""


def repo_files(suffixes=None, names=None):
    for d, dirs, files in os.walk(ROOT):
        dirs[:] = sorted(x for x in dirs if x not in SKIP_DIRS)
        for f in sorted(files):
            if (suffixes and f.endswith(suffixes)) or (names and f in names):
                yield os.path.join(d, f)


def rel(p):
    return os.path.relpath(p, ROOT)


def markdown_files():
    return list(repo_files(suffixes=(".md",)))


def cpp_blocks(path):
    """(line, spec, code) for each ```cpp block; spec is the snippet comment or None."""
    lines = open(path, encoding="utf-8").read().split("\n")
    out, i = [], 0
    while i < len(lines):
        if lines[i].strip() == "```cpp":
            start, j = i, i + 1
            while j < len(lines) and lines[j].strip() != "```":
                j += 1
            k = start - 1
            while k >= 0 and not lines[k].strip():
                k -= 1
            m = re.match(r"\s*<!--\s*snippet:\s*(.*?)\s*-->\s*$", lines[k]) if k >= 0 else None
            out.append((start + 1, m.group(1) if m else None, "\n".join(lines[start + 1:j])))
            i = j + 1
        else:
            i += 1
    return out


def region(path, name):
    text = open(os.path.join(ROOT, path), encoding="utf-8").read().split("\n")
    marks = [i for i, l in enumerate(text) if l.strip() == f"// [{name}]"]
    if len(marks) != 2:
        return None
    body = text[marks[0] + 1:marks[1]]
    indent = min((len(l) - len(l.lstrip()) for l in body if l.strip()), default=0)
    return "\n".join(l[indent:] for l in body)


def parse_spec(spec):
    parts = [p.strip() for p in spec.split("|")]
    fields = {}
    for p in parts[1:]:
        key, _, value = p.partition(":")
        fields[key.strip()] = value.strip()
    return parts[0], fields


def check_snippets(args):
    failures, compiled, matched = [], 0, 0
    flags = ["-std=c++20", "-Wall", "-Wextra", "-Wpedantic", "-Werror", "-O2",
             "-D_FORTIFY_SOURCE=2", "-c", "-o", os.devnull] + [f"-I{d}" for d in args.include]
    with tempfile.TemporaryDirectory() as tmp:
        for md in markdown_files():
            for line, spec, code in cpp_blocks(md):
                where = f"{rel(md)}:{line}"
                if spec is None:
                    failures.append(f"{where}: a cpp block with no <!-- snippet: ... --> line")
                    continue
                kind, fields = parse_spec(spec)
                if kind.startswith("file "):
                    path, _, name = kind[5:].strip().partition("#")
                    want = region(path, name)
                    if want is None:
                        failures.append(f"{where}: {path} has no region [{name}] (two markers)")
                    elif want != code:
                        failures.append(f"{where}: differs from {path}#{name}")
                    else:
                        matched += 1
                    if fields.get("compile") != "main":
                        continue
                    kind = "main"  # and compiled here too, with the flags above
                if kind == "main":
                    unit = (PRELUDE + fields.get("before", "") + "\nint main() {\n" + code +
                            "\n}\n")
                elif kind == "toplevel":
                    unit = (PRELUDE + fields.get("before", "") + "\n" + code + "\n" +
                            fields.get("after", "") + "\n")
                else:
                    failures.append(f"{where}: unknown snippet kind '{kind}'")
                    continue
                src = os.path.join(tmp, f"snippet{compiled}.cpp")
                with open(src, "w", encoding="utf-8") as f:
                    f.write(unit)
                run = subprocess.run([args.cxx] + flags + [src], capture_output=True, text=True)
                compiled += 1
                if run.returncode != 0:
                    failures.append(f"{where}: does not compile warning-free:\n{run.stderr}")
    print(f"snippets: {compiled} compiled, {matched} identical to the source they come from, "
          f"{len(failures)} failed")
    for f in failures:
        print(f"  FAIL {f}")
    return 1 if failures or compiled + matched == 0 else 0


def slug(heading):
    s = re.sub(r"[`*_\[\]()]", "", heading.strip().lower())
    s = re.sub(r"[^\w\- ]", "", s)
    return s.replace(" ", "-")


@functools.lru_cache(maxsize=None)
def anchors(md):
    out, fence = set(), False
    for l in open(md, encoding="utf-8"):
        if l.startswith("```"):
            fence = not fence
        elif not fence and l.startswith("#"):
            out.add(slug(l.lstrip("#")))
    return out


def check_links(_args):
    failures, checked = [], 0
    files = markdown_files()
    for md in files:
        fence = False
        for n, l in enumerate(open(md, encoding="utf-8"), 1):
            if l.startswith("```"):
                fence = not fence
            if fence:
                continue
            for target in re.findall(r"\]\(([^)\s]+)\)", l):
                if re.match(r"[a-z]+:", target):
                    continue  # http(s), mailto: not checked here (no network)
                checked += 1
                path, _, anchor = target.partition("#")
                full = os.path.normpath(os.path.join(os.path.dirname(md), path)) if path else md
                if not full.startswith(ROOT + os.sep) and full != ROOT:
                    failures.append(f"{rel(md)}:{n}: {target} leaves the repository")
                elif not os.path.exists(full):
                    failures.append(f"{rel(md)}:{n}: {target} does not exist")
                elif anchor and full.endswith(".md") and anchor not in anchors(full):
                    failures.append(f"{rel(md)}:{n}: {target}: no such heading")
    readme = os.path.join(ROOT, "README.md")
    length = sum(1 for _ in open(readme, encoding="utf-8"))
    if length > README_LIMIT:
        failures.append(f"README.md: {length} lines, more than {README_LIMIT}")
    print(f"links: {checked} checked in {len(files)} files, README {length} lines, "
          f"{len(failures)} failed")
    for f in failures:
        print(f"  FAIL {f}")
    return 1 if failures or checked == 0 else 0


SOURCE_SUFFIXES = (".cpp", ".hpp", ".h", ".py", ".sh", ".cmake", ".lua", ".js", ".in")


def check_spdx(_args):
    failures, checked = [], 0
    names = {"CMakeLists.txt", "Makefile", "run"}
    for f in repo_files(suffixes=SOURCE_SUFFIXES, names=names):
        r = rel(f)
        if r.startswith(("bench/results/", "stress/results/")):
            continue
        head = open(f, encoding="utf-8", errors="replace").read().split("\n", 2)
        first = head[1] if head and head[0].startswith("#!") and len(head) > 1 else head[0]
        checked += 1
        if SPDX not in first:
            failures.append(r)
    print(f"spdx: {checked} source files, {len(failures)} without '{SPDX}' on their first line")
    for f in failures:
        print(f"  FAIL {f}")
    return 1 if failures or checked == 0 else 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    sub = p.add_subparsers(dest="what", required=True)
    s = sub.add_parser("snippets", help="compile or match every cpp block")
    s.add_argument("--include", action="append", default=[], help="an include directory")
    s.add_argument("--cxx", default=os.environ.get("CXX", "c++"), help="the compiler")
    sub.add_parser("links", help="every relative link resolves; README length")
    sub.add_parser("spdx", help="every source file has its SPDX line")
    args = p.parse_args()
    return {"snippets": check_snippets, "links": check_links, "spdx": check_spdx}[args.what](args)


if __name__ == "__main__":
    sys.exit(main())
