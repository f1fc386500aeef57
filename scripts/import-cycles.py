#!/usr/bin/env python3
"""Finds circles of files in a crate's import graph.

An edge A -> B means file A names an item of file B: through `use`, or a path written
inline (`crate::x::y::Z`, `super::w`). A parent module file that only declares its children
(`mod x;`) or re-exports them (`pub use x::Y;`) adds no edge; a name re-exported by a parent
is followed to the file that defines it. Circles are strongly connected components of two or
more files.

Usage: scripts/import-cycles.py [--edges] [SRC_DIR ...]   (default: src)
--edges also prints every file's edges. Exit code 1 when a circle is found.
"""
import os
import re
import sys

PATH_RE = re.compile(r"\b(crate|super|self)((?:\s*::\s*(?:[A-Za-z_][A-Za-z0-9_]*|\{))+)")


def module_of(root, path):
    rel = os.path.relpath(path, root)[:-3].split(os.sep)
    if rel[-1] in ("mod", "lib", "main"):
        rel = rel[:-1]
    return tuple(rel)


def strip_comments(text):
    """Blanks out comments, strings and char literals, keeping the code."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if text.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
        elif c == "r" and re.match(r'r#*"', text[i:i + 8]) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            hashes = len(re.match(r'r(#*)"', text[i:]).group(1))
            end = text.find('"' + "#" * hashes, i + 2 + hashes)
            out.append('""')
            i = n if end < 0 else end + 1 + hashes
        elif c == '"':
            i += 1
            while i < n and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
            out.append('""')
            i += 1
        elif c == "'" and re.match(r"'(?:\\.[^']*|[^'\\])'", text[i:i + 12]):
            m = re.match(r"'(?:\\.[^']*|[^'\\])'", text[i:i + 12])
            out.append("' '")
            i += len(m.group(0))
        else:
            out.append(c)
            i += 1
    return "".join(out)


def expand_use(body):
    """`a::{b, c::{d, e}}` -> [[a,b],[a,c,d],[a,c,e]] (names only; `as` dropped)."""
    body = re.sub(r"\s+as\s+[A-Za-z_][A-Za-z0-9_]*", "", body)
    body = re.sub(r"\s+", "", body)
    out = []

    def walk(prefix, s):
        depth, start, parts = 0, 0, []
        for i, ch in enumerate(s):
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
            elif ch == "," and depth == 0:
                parts.append(s[start:i])
                start = i + 1
        parts.append(s[start:])
        for part in parts:
            if not part:
                continue
            if "{" in part:
                head, rest = part.split("{", 1)
                head = [h for h in head.split("::") if h]
                walk(prefix + head, rest[: rest.rfind("}")])
            else:
                out.append(prefix + [n for n in part.split("::") if n])

    walk([], body)
    return out


def main():
    args = sys.argv[1:]
    show_edges = "--edges" in args
    roots = [a for a in args if a != "--edges"] or ["src"]
    found = False
    for root in roots:
        files = {}
        for dirpath, _, names in os.walk(root):
            for name in names:
                if name.endswith(".rs"):
                    path = os.path.join(dirpath, name)
                    files[module_of(root, path)] = path
        # Files that are the crate roots of binaries (src/bin/x/main.rs) are separate crates.
        files = {m: p for m, p in files.items() if not (m and m[0] == "bin")}
        # `#[path = "x_tests.rs"] mod tests;` makes that file the declaring module's child.
        for mod, path in list(files.items()):
            raw = open(path, encoding="utf-8").read()
            for m in re.finditer(r'#\[path\s*=\s*"([^"]+)"\]\s*(?:#\[[^\]]*\]\s*)*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*;', raw):
                target = os.path.normpath(os.path.join(os.path.dirname(path), m.group(1)))
                for other, other_path in list(files.items()):
                    if os.path.normpath(other_path) == target:
                        del files[other]
                        files[mod + (m.group(2),)] = other_path
        texts = {m: strip_comments(open(p, encoding="utf-8").read()) for m, p in files.items()}
        # Re-exports of parents: module -> {name: target module path}
        reexports = {}
        for mod, text in texts.items():
            for m in re.finditer(r"pub(?:\([a-z]+\))?\s+use\s+([^;]+);", text):
                for parts in expand_use(m.group(1)):
                    if parts[0] == "self":
                        parts = parts[1:]
                    if parts and parts[0] not in ("crate", "super") and mod + (parts[0],) in files:
                        reexports.setdefault(mod, {})[parts[-1]] = mod + tuple(parts[:-1]), parts[-1]

        def resolve(mod, parts, depth=0):
            if not parts:
                return None
            if parts[0] == "crate":
                base, rest = (), parts[1:]
            elif parts[0] in ("super", "self"):
                rest = list(parts)
                # Inside an inline module (`mod tests { … }`), the first `super`s climb out of
                # the inline modules to the file's own module, and `self` is the inline module.
                if depth and rest[0] == "self":
                    return None
                while depth and rest and rest[0] == "super":
                    rest, depth = rest[1:], depth - 1
                # A file module's `super` is its parent; `self` is itself.
                base = list(mod)
                while rest and rest[0] in ("super", "self"):
                    if rest[0] == "super":
                        base = base[:-1]
                    rest = rest[1:]
                base = tuple(base)
            elif files[mod].endswith(("mod.rs", "lib.rs", "main.rs")) and mod + (parts[0],) in files:
                # A parent naming its own child module: `child::item`.
                base, rest = mod, parts
            else:
                return None
            cur = base
            for name in rest:
                if name == "*":
                    break
                if cur + (name,) in files:
                    cur = cur + (name,)
                    continue
                seen = 0
                while name in reexports.get(cur, {}) and seen < 8:
                    cur, name = reexports[cur][name]
                    seen += 1
                    while cur + (name,) in files:
                        cur = cur + (name,)
                break
            return cur if cur in files else None

        def inline_spans(text):
            """(start, end) of every inline module's braces: `mod tests { … }`."""
            spans = []
            for m in re.finditer(r"\bmod\s+[A-Za-z_][A-Za-z0-9_]*\s*\{", text):
                depth, i = 1, m.end()
                while i < len(text) and depth:
                    if text[i] == "{":
                        depth += 1
                    elif text[i] == "}":
                        depth -= 1
                    i += 1
                spans.append((m.end(), i))
            return spans

        def blank(m):
            return " " * len(m.group(0))

        edges = {m: set() for m in files}
        for mod, text in texts.items():
            is_parent = files[mod].endswith(("mod.rs", "lib.rs"))
            spans = inline_spans(text)

            def depth_at(pos):
                return sum(1 for a, b in spans if a <= pos < b)

            # Declarations and re-exports of children add no edge (blanked, keeping offsets).
            body = text
            if is_parent:
                body = re.sub(r"pub(?:\([a-z]+\))?\s+use\s+(?:self::)?[^;]+;",
                              lambda m: blank(m) if not re.match(r"pub(?:\([a-z]+\))?\s+use\s+(crate|super)", m.group(0)) else m.group(0), body)
            for m in re.finditer(r"\buse\s+([^;]+);", body):
                for parts in expand_use(m.group(1)):
                    target = resolve(mod, parts, depth_at(m.start()))
                    if target and target != mod:
                        edges[mod].add(target)
            code = re.sub(r"\buse\s+[^;]+;", blank, body)
            for m in PATH_RE.finditer(code):
                parts = [m.group(1)] + [p for p in re.split(r"\s*::\s*", m.group(2)) if p and p != "{"]
                target = resolve(mod, parts, depth_at(m.start()))
                if target and target != mod:
                    edges[mod].add(target)
            # A parent that re-exports a child's item and also uses it in its own code depends
            # on that child (`pub(crate) use child::X;` then `X::new()` in the parent).
            if is_parent:
                # (`mod run;` declares a child; it is not a use of a re-exported `run`.)
                own_code = re.sub(r"\bmod\s+[A-Za-z_][A-Za-z0-9_]*\s*;", blank, code)
                for name, (owner, item) in reexports.get(mod, {}).items():
                    if owner != mod and owner in files and re.search(r"(?<![:\w])" + re.escape(name) + r"\b", own_code):
                        target = resolve(mod, list(owner[len(mod):]) + [item]) if owner[:len(mod)] == mod else None
                        if target and target != mod:
                            edges[mod].add(target)
            if is_parent:
                for m in re.finditer(r"(?<![:\w])([a-z_][a-z0-9_]*)\s*::\s*([A-Za-z_][A-Za-z0-9_]*)", code):
                    if mod + (m.group(1),) in files:
                        target = resolve(mod, [m.group(1), m.group(2)])
                        if target and target != mod:
                            edges[mod].add(target)
        if show_edges:
            for m in sorted(edges, key=lambda m: files[m]):
                if edges[m]:
                    print(f"{files[m]} -> {', '.join(sorted(files[t] for t in edges[m]))}")
        # Tarjan
        index, low, stack, on, sccs = {}, {}, [], set(), []
        counter = [0]
        sys.setrecursionlimit(10000)

        def strong(v):
            index[v] = low[v] = counter[0]
            counter[0] += 1
            stack.append(v)
            on.add(v)
            for w in edges[v]:
                if w not in index:
                    strong(w)
                    low[v] = min(low[v], low[w])
                elif w in on:
                    low[v] = min(low[v], index[w])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    sccs.append(comp)

        for v in files:
            if v not in index:
                strong(v)
        for comp in sccs:
            found = True
            names = sorted(files[m] for m in comp)
            print(f"{root}: circle of {len(comp)} files:")
            for m in sorted(comp):
                outs = sorted(files[t] for t in edges[m] if t in comp)
                print(f"  {files[m]} -> {', '.join(outs)}")
        if not sccs:
            print(f"{root}: no circles among {len(files)} files")
    sys.exit(1 if found else 0)


if __name__ == "__main__":
    main()
