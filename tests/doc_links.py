#!/usr/bin/python3
"""Link check of the documentation: every relative link and image in
README.md and docs/*.md must name a file or directory of the repository, and
every #anchor must name a heading of the page it points to, with anchors made
from headings as GitHub makes them.  Links inside code (fenced blocks and
`inline code`) are text, not links, and are not checked; web links
(http:, https:, mailto:) are not fetched.  Also every docs/ page must be
reachable from README.md, so none is orphaned.

usage: doc_links.py SOURCE_ROOT
Exit status 0 when every link resolves, 1 otherwise (each broken link is
printed as FILE:LINE: what is wrong)."""
import os
import re
import sys
import unicodedata

ROOT = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), ".."))
FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFDEF = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+\"[^\"]*\")?\s*$")
HTML_ANCHOR = re.compile(r"<a\s+(?:name|id)=\"([^\"]+)\"")
WEB = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def prose_lines(path):
    """(line number, text) of the lines outside fenced code blocks, with
    inline code spans blanked out."""
    inside = False
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if FENCE.match(line):
                inside = not inside
                continue
            if not inside:
                yield n, re.sub(r"(`+)(.+?)\1", lambda m: " " * len(m.group(0)), line.rstrip("\n"))


def slug(heading):
    """GitHub's anchor of a heading: the rendered text (markup removed),
    lower-cased, every character that is not a letter, a digit, a mark, '_',
    '-' or a space dropped, spaces turned into '-'."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # links and images: their text
    text = re.sub(r"<[^>]+>", "", text)                           # inline HTML
    text = text.replace("`", "").replace("*", "")
    kept = []
    for ch in text.lower():
        cat = unicodedata.category(ch)
        if ch in " -_" or cat[0] in "LM" or cat in ("Nd", "Nl"):
            kept.append(ch)
    return "".join(kept).replace(" ", "-")


def anchors(path):
    """Every anchor a page defines: its headings' slugs (a repeated slug gets
    -1, -2, ... as on GitHub) and explicit <a name/id> targets."""
    seen, found = {}, set()
    inside = False
    with open(path, encoding="utf-8") as f:
        for line in f:
            if FENCE.match(line):
                inside = not inside
                continue
            if inside:
                continue
            found.update(HTML_ANCHOR.findall(line))
            m = HEADING.match(line)
            if m:
                s = slug(m.group(2))
                k = seen.get(s, 0)
                seen[s] = k + 1
                found.add(s if k == 0 else f"{s}-{k}")
    return found


def pages():
    out = [os.path.join(ROOT, "README.md")]
    docs = os.path.join(ROOT, "docs")
    if os.path.isdir(docs):
        out += sorted(os.path.join(docs, f) for f in os.listdir(docs) if f.endswith(".md"))
    return out


failures = []
anchor_cache = {}
links_from = {}  # page -> pages it links to


def fail(path, n, msg):
    failures.append(f"{os.path.relpath(path, ROOT)}:{n}: {msg}")


def check_link(path, n, target):
    if WEB.match(target):
        return
    file_part, _, anchor = target.partition("#")
    if file_part:
        dest = os.path.normpath(os.path.join(os.path.dirname(path), file_part))
        if os.path.relpath(dest, ROOT).startswith(".."):
            fail(path, n, f"link '{target}' leaves the repository")
            return
        if not os.path.exists(dest):
            fail(path, n, f"link '{target}': no such file {os.path.relpath(dest, ROOT)}")
            return
    else:
        dest = path
    links_from.setdefault(path, set()).add(dest)
    if not anchor:
        return
    if not dest.endswith(".md"):
        fail(path, n, f"link '{target}': an anchor into a file that is not Markdown")
        return
    if dest not in anchor_cache:
        anchor_cache[dest] = anchors(dest)
    if anchor not in anchor_cache[dest]:
        fail(path, n, f"link '{target}': {os.path.relpath(dest, ROOT)} has no heading with anchor #{anchor}")


checked = 0
for page in pages():
    for n, text in prose_lines(page):
        targets = [m.group(1) for m in LINK.finditer(text)]
        ref = REFDEF.match(text)
        if ref:
            targets.append(ref.group(1))
        for t in targets:
            check_link(page, n, t)
            checked += 1

# every docs page reachable from the README
readme = os.path.join(ROOT, "README.md")
reached, todo = {readme}, [readme]
while todo:
    for dest in links_from.get(todo.pop(), ()):
        if dest.endswith(".md") and dest not in reached:
            reached.add(dest)
            todo.append(dest)
for page in pages():
    if page not in reached:
        fail(page, 1, "no link from README.md leads to this page")

for f in failures:
    print("FAIL:", f)
print(f"{checked} links in {len(pages())} pages checked, {len(failures)} broken")
sys.exit(1 if failures else 0)
