#!/usr/bin/python3
"""Turn Doxygen's XML of the public headers into section 3 man pages.

    xml2man.py XML_DIR OUT_DIR --version V [--date YYYY-MM-DD]   (or SOURCE_DATE_EPOCH)
    xml2man.py XML_DIR --check

One page per public function (wh_*), one per public type (typedefs and named
enums), and libwebhook(3), the overview: every group of the header with its
functions, types and constants. Pages are written gzip-compressed
(NAME.3.gz, as Debian ships them); OUT_DIR is emptied of old pages first, so a
function that left the header leaves no page behind.

--check prints what the reference leaves undocumented that Doxygen does not
warn about (enum values, macros, a return value other than a result code) and
fails when there is any; the `docs` target runs it.

Only the standard library: it runs with the system's python3.
"""

import argparse
import datetime
import gzip
import os
import re
import sys
import xml.etree.ElementTree as ET

MANUAL = "libwebhook Manual"
THREADS_TITLE = "Thread safety"  # the title of the @threadsafety paragraph


# --- reading Doxygen's XML ---------------------------------------------------------------

class Member:
    """A function, typedef, enum, define or variable of a public header."""

    def __init__(self, node, header):
        self.node = node
        self.id = node.get("id")
        self.kind = node.get("kind")
        self.name = node.findtext("name")
        self.header = header
        loc = node.find("location")
        self.line = int(loc.get("line", "0")) if loc is not None else 0
        self.group = None  # the innermost Group holding it


class Group:
    def __init__(self, node):
        self.id = node.get("id")
        self.name = node.findtext("compoundname")
        self.title = node.findtext("title") or self.name
        self.node = node
        self.members = []
        self.line = 0
        self.parent = None


def load(xml_dir):
    """Members of the public header files, and the groups, in header order."""
    index = ET.parse(os.path.join(xml_dir, "index.xml")).getroot()
    members, groups = {}, []
    for comp in index.findall("compound"):
        kind = comp.get("kind")
        if kind not in ("file", "group"):
            continue
        doc = ET.parse(os.path.join(xml_dir, comp.get("refid") + ".xml")).getroot()
        cdef = doc.find("compounddef")
        if kind == "file":
            loc = cdef.find("location")
            header = loc.get("file") if loc is not None else cdef.findtext("compoundname")
            for node in cdef.iter("memberdef"):
                m = Member(node, header)
                members.setdefault(m.id, m)
        else:
            groups.append(Group(cdef))
    by_id = {g.id: g for g in groups}
    for g in groups:
        for inner in g.node.findall("innergroup"):
            if inner.get("refid") in by_id:
                by_id[inner.get("refid")].parent = g
        for node in g.node.iter("memberdef"):
            m = members.get(node.get("id"))
            if m is not None:
                m.group = g
                g.members.append(m)
    for g in groups:
        g.members.sort(key=lambda m: m.line)
        lines = [m.line for m in g.members]
        g.line = min(lines) if lines else 1 << 30
    groups.sort(key=lambda g: g.line)
    ordered = sorted(members.values(), key=lambda m: (m.header, m.line))
    return ordered, groups


# --- troff text ---------------------------------------------------------------------

SPECIAL = {
    "ndash": r"\(en", "mdash": r"\(em", "nonbreakablespace": r"\ ", "sp": " ",
    "lsquo": "`", "rsquo": "'", "ldquo": r"\(lq", "rdquo": r"\(rq", "copy": r"\(co",
    "times": r"\(mu", "le": r"\(<=", "ge": r"\(>=", "ne": r"\(!=", "plusmn": r"\(+-",
    "hellip": "...", "laquo": r"\(Fo", "raquo": r"\(Fc",
}


def esc(text):
    """Escape text for troff: backslashes, minus signs, and, so that a long JSON
    field list can be broken at its commas, an optional break after each comma
    that no space follows."""
    text = text.replace("\\", r"\e").replace("-", r"\-")
    return re.sub(r",(?=\S)", r",\:", text)


def line_safe(line):
    """A text line must not start with a control character or a space."""
    line = line.lstrip(" ")
    if line.startswith((".", "'")):
        line = r"\&" + line
    return line


def plain(node):
    """The text of a node without markup, whitespace collapsed."""
    if node is None:
        return ""
    return " ".join("".join(node.itertext()).split())


def inline(node):
    """Inline markup of node's content, in troff escapes."""
    out = [esc(node.text or "")]
    for child in node:
        out.append(inline_elem(child))
        out.append(esc(child.tail or ""))
    return "".join(out)


def inline_elem(el):
    tag = el.tag
    if tag in ("computeroutput", "bold"):
        return r"\fB" + inline(el) + r"\fP"
    if tag == "emphasis":
        return r"\fI" + inline(el) + r"\fP"
    if tag == "ref":
        return r"\fB" + inline(el) + r"\fP"
    if tag == "linebreak":
        return "\n.br\n"
    if tag in SPECIAL:
        return SPECIAL[tag]
    return inline(el)  # ulink, anchor, and what else may come: the text


def clean(text):
    """One paragraph of inline troff: whitespace collapsed, safe line starts."""
    lines = []
    for raw in text.split("\n"):
        if raw.startswith(".br"):
            lines.append(".br")
            continue
        words = " ".join(raw.split())
        if words:
            lines.append(line_safe(words))
    return "\n".join(lines)


# --- blocks: what a description is made of -------------------------------------------

class Doc:
    """A member's description split into the sections of a man page."""

    def __init__(self):
        self.body = []       # blocks: ("p", text) | ("list", [[blocks]]) | ("code", [lines])
        self.params = []     # (names, blocks)
        self.returns = []    # blocks
        self.retvals = []    # (names, blocks)
        self.threads = []    # blocks
        self.see = []        # names


def parse_doc(member_node):
    doc = Doc()
    for part in ("briefdescription", "detaileddescription"):
        node = member_node.find(part)
        if node is not None:
            doc.body += blocks(node, doc)
    return doc


def blocks(node, doc):
    """Blocks of a description node; sections it names go to doc's other lists."""
    result = []
    for child in node:
        if child.tag == "para":
            result += para_blocks(child, doc)
        else:
            result += block_elem(child, doc)
    return result


def para_blocks(para, doc):
    result, text = [], [esc(para.text or "")]

    def flush():
        t = clean("".join(text))
        if t:
            result.append(("p", t))
        text.clear()

    for child in para:
        if child.tag in BLOCK_TAGS:
            flush()
            result += block_elem(child, doc)
        else:
            text.append(inline_elem(child))
        text.append(esc(child.tail or ""))
    flush()
    return result


def block_elem(el, doc):
    tag = el.tag
    if tag == "simplesect":
        kind = el.get("kind")
        inner = blocks_without_title(el, doc)
        if kind == "return":
            doc.returns += inner
            return []
        if kind == "see":
            doc.see += [plain(r) for r in el.iter("ref")]
            return []
        if kind == "par":
            title = plain(el.find("title")).rstrip(":")
            if title == THREADS_TITLE:
                doc.threads += inner
                return []
            return label(title, inner)
        return label(kind.capitalize(), inner)
    if tag == "parameterlist":
        target = doc.params if el.get("kind") == "param" else doc.retvals
        for item in el.findall("parameteritem"):
            names = [plain(n) for n in item.iter("parametername")]
            target.append((names, blocks(item.find("parameterdescription"), doc)))
        return []
    if tag in ("itemizedlist", "orderedlist"):
        return [("list", [blocks(li, doc) for li in el.findall("listitem")])]
    if tag == "programlisting":
        return [("code", [code_line(cl) for cl in el.findall("codeline")])]
    if tag in ("verbatim", "preformatted"):
        return [("code", (el.text or "").strip("\n").split("\n"))]
    if tag in ("title",):
        return []
    if tag == "para":
        return para_blocks(el, doc)
    return [("p", clean(inline(el)))] if plain(el) else []


BLOCK_TAGS = {"simplesect", "parameterlist", "itemizedlist", "orderedlist",
              "programlisting", "verbatim", "preformatted", "table", "heading"}


def blocks_without_title(el, doc):
    return [b for child in el if child.tag != "title" for b in block_elem(child, doc)]


def label(title, inner):
    """A titled paragraph (@note, @warning, @par): the title in bold before the text."""
    if inner and inner[0][0] == "p":
        return [("p", r"\fB" + esc(title) + r":\fP " + inner[0][1])] + inner[1:]
    return [("p", r"\fB" + esc(title) + r":\fP")] + inner


def code_line(codeline):
    out = []
    for node in codeline.iter():
        if node.tag == "sp":
            out.append(" ")
        elif node.text and node.tag != "codeline":
            out.append(node.text)
        if node.tail and node is not codeline:
            out.append(node.tail)
    return "".join(out)


def render(blocks_, first=True, indented=False):
    """troff for a list of blocks; paragraphs after the first get .PP, or .IP when
    they continue an indented item (.TP, .IP)."""
    out = []
    for kind, content in blocks_:
        if not first:
            out.append(".IP" if indented else ".PP")
        first = False
        if kind == "p":
            out.append(content)
        elif kind == "list":
            for item in content:
                out.append(r".IP \(bu 2")
                # Later paragraphs of an item stay indented with it.
                out.append(render(item, indented=True))
        elif kind == "code":
            out += [".RS 4", ".nf"]
            out += [line_safe(esc(ln).replace(r",\:", ",")) if ln.strip() else "" for ln in content]
            out += [".fi", ".RE"]
    return "\n".join(out)


# --- pages ------------------------------------------------------------------------------

def th(name, version, date):
    date = date or ""
    # Ragged right and no hyphenation: identifiers and JSON field lists stay whole.
    return ('.\\" Generated by docs/man/xml2man.py from the public header; do not edit.\n'
            '.TH "%s" 3 "%s" "libwebhook %s" "%s"\n.ad l\n.nh\n' % (name, date, version, MANUAL))


def name_line(name, brief):
    brief = brief.rstrip(".") if brief else "part of libwebhook"
    if re.match(r"[A-Z][a-z ]", brief):  # "The version ..." but not "HTTP ..." nor "WH_..."
        brief = brief[0].lower() + brief[1:]
    return ".SH NAME\n%s \\- %s\n" % (esc(name), esc(brief))


def library_section():
    return (".SH LIBRARY\n"
            "libwebhook (\\fI\\-lwebhook\\fP, or \\fBpkg\\-config \\-\\-libs libwebhook\\fP)\n")


def type_text(node):
    """A declaration's type as text; refs flattened."""
    return " ".join(plain(node).split()) if node is not None else ""


def synopsis_function(m):
    """The prototype, one parameter a line, aligned after the opening parenthesis."""
    rtype = type_text(m.node.find("type"))
    lead = rtype + ("" if rtype.endswith("*") else " ") + m.name + "("
    params = []
    for p in m.node.findall("param"):
        ptype = type_text(p.find("type"))
        pname = (p.findtext("declname") or "") + (p.findtext("array") or "")
        sep = "" if ptype.endswith("*") or not pname else " "
        piece = r"\fB" + esc(ptype + sep) + r"\fR"
        if pname:
            piece += r"\fI" + esc(pname) + r"\fR"
        params.append(piece)
    if not params:
        params = [""]
    lines = []
    for i, piece in enumerate(params):
        head = r"\fB" + esc(lead) + r"\fR" if i == 0 else r"\&" + " " * len(lead)
        tail = r"\fB);\fR" if i == len(params) - 1 else r"\fB,\fR"
        lines.append(head + piece + tail)
    lines[0] = line_safe(lines[0])
    return lines


def synopsis(m):
    out = [".SH SYNOPSIS", ".nf", r'.B #include <%s>' % m.header, ".PP"]
    if m.kind == "function":
        out += synopsis_function(m)
    elif m.kind == "enum":
        out.append(r"\fBtypedef enum {\fP")
        vals = m.node.findall("enumvalue")
        for i, v in enumerate(vals):
            init = " ".join((v.findtext("initializer") or "").split())
            comma = "," if i < len(vals) - 1 else ""
            out.append(r"\&    \fB" + esc(v.findtext("name") + (" " + init if init else "") + comma) + r"\fP")
        out.append(r"\fB} " + esc(m.name) + r";\fP")
    else:
        defn = " ".join((m.node.findtext("definition") or "").split())
        out.append(r"\fB" + esc(defn) + r";\fP")
    out.append(".fi")
    return "\n".join(out) + "\n"


def section(title, body):
    return ".SH %s\n%s\n" % (title, body) if body.strip() else ""


def params_section(doc, m):
    if not doc.params:
        return ""
    out = []
    for names, bl in doc.params:
        out.append(".TP")
        out.append(".I " + " ".join('"%s"' % esc(n) for n in names))
        out.append(render(bl, indented=True))
    return section("PARAMETERS", "\n".join(out))


def returns_section(doc, m):
    if m.kind != "function":
        return ""
    body = render(doc.returns)
    for names, bl in doc.retvals:
        body += "\n.TP\n.B " + esc(", ".join(names)) + "\n" + render(bl, indented=True)
    rtype = type_text(m.node.find("type"))
    if not body.strip():
        if rtype == "void":
            return ""
        if rtype == "int":
            # The header's convention for every function that can fail.
            body = (r"\fBWH_OK\fP (0) on success, otherwise a positive \fBWH_E*\fP code; "
                    r"\fBwh_error_last\fP(3) then says what went wrong on the calling thread.")
    return section("RETURN VALUE", body)


def first_param_type(m, members_by_id):
    p = m.node.find("param")
    if p is None or p.find("type") is None:
        return None
    ref = p.find("type").find("ref")
    return members_by_id.get(ref.get("refid")) if ref is not None else None


def threads_section(doc, m, members_by_id, docs):
    if doc.threads:
        return section("THREAD SAFETY", render(doc.threads))
    owner = first_param_type(m, members_by_id) if m.kind == "function" else None
    if owner is not None and docs[owner.id].threads:
        # The rule of the handle it works on.
        inherited = list(docs[owner.id].threads)
        see = r"(See \fB%s\fP(3).)" % esc(owner.name)
        if inherited[-1][0] == "p":
            inherited[-1] = ("p", inherited[-1][1] + "\n" + see)
        else:
            inherited.append(("p", see))
        return section("THREAD SAFETY", render(inherited))
    return ""


def see_also(m, doc, groups, pages):
    names = []
    group = m.group
    if group is not None:
        names += [x.name for x in group.members if x.name in pages]
        if group.parent is not None:
            names += [x.name for x in group.parent.members if x.name in pages]
    names += [n for n in doc.see if n in pages]
    seen, out = {m.name}, []
    for n in names + ["libwebhook"]:
        if n not in seen:
            seen.add(n)
            out.append(n)
    lines = [".BR %s (3)%s" % (esc(n), "," if i < len(out) - 1 else "") for i, n in enumerate(out)]
    return section("SEE ALSO", "\n".join(lines))


def values_section(m):
    if m.kind != "enum":
        return ""
    out = []
    for v in m.node.findall("enumvalue"):
        vd = Doc()
        for part in ("briefdescription", "detaileddescription"):
            node = v.find(part)
            if node is not None:
                vd.body += blocks(node, vd)
        out += [".TP", ".B " + esc(v.findtext("name")), render(vd.body, indented=True)]
    return section("VALUES", "\n".join(out))


def member_page(m, doc, ctx):
    version, date, members_by_id, docs, groups, pages = ctx
    brief = plain(m.node.find("briefdescription"))
    return "".join([
        th(m.name, version, date),
        name_line(m.name, brief),
        library_section(),
        synopsis(m),
        section("DESCRIPTION", render(doc.body)),
        params_section(doc, m),
        values_section(m),
        returns_section(doc, m),
        threads_section(doc, m, members_by_id, docs),
        see_also(m, doc, groups, pages),
    ])


def overview_page(file_node, members, groups, version, date, pages):
    """libwebhook(3): the header's own description, then every group in order."""
    brief = plain(file_node.find("briefdescription")) if file_node is not None else ""
    brief = re.sub(r"^libwebhook\s*[-:]\s*", "", brief)
    out = [th("libwebhook", version, date), name_line("libwebhook", brief or
           "send and verify webhooks from C"), library_section(),
           ".SH SYNOPSIS\n.nf\n.B #include <webhook/webhook.h>\n.PP\n"
           "cc app.c $(pkg\\-config \\-\\-cflags \\-\\-libs libwebhook)\n"
           ".PP\n"
           "find_package(webhook 1 REQUIRED)\n"
           "target_link_libraries(app PRIVATE webhook::webhook)\n.fi\n"]
    if file_node is not None:
        d = Doc()
        d.body = blocks(file_node.find("detaileddescription"), d)
        out.append(section("DESCRIPTION", render(d.body)))
    body = []
    for g in groups:
        body.append(".SS " + esc(g.title))
        gd = Doc()
        gd.body = blocks(g.node.find("briefdescription"), gd) + blocks(g.node.find("detaileddescription"), gd)
        if gd.body:
            body.append(render(gd.body))
        for m in g.members:
            brief = plain(m.node.find("briefdescription"))
            if m.name in pages:
                body += [".TP", ".BR %s (3)" % esc(m.name), esc(brief)]
            elif m.kind == "enum":
                for v in m.node.findall("enumvalue"):
                    vb = plain(v.find("briefdescription")) or plain(v.find("detaileddescription"))
                    init = " ".join((v.findtext("initializer") or "").lstrip("= ").split())
                    body += [".TP", ".B " + esc(v.findtext("name")) + (" (%s)" % esc(init) if init else ""),
                             esc(vb) or esc(brief)]
            else:
                body += [".TP", ".B " + esc(m.name), esc(brief)]
    out.append(section("INTERFACES", "\n".join(line_safe(x) if not x.startswith(".") else x for x in body)))
    out.append(section("SEE ALSO", "Every function has a page of its own, listed above.\n"
                       ".PP\nThe guide, docs/guide.md, and docs/threading.md in the source."))
    return "".join(out)


# --- checks -----------------------------------------------------------------------------

def check(members):
    """What Doxygen does not warn about but a reader needs."""
    problems = []
    for m in members:
        name = "anonymous enum" if m.name.startswith("@") else m.name
        where = "%s:%d: %s" % (m.header, m.line, name)
        if not (plain(m.node.find("briefdescription")) or plain(m.node.find("detaileddescription"))):
            problems.append(where + ": not documented")
        for v in m.node.findall("enumvalue"):
            if not (plain(v.find("briefdescription")) or plain(v.find("detaileddescription"))):
                problems.append(where + ": enum value %s not documented" % v.findtext("name"))
        if m.kind == "function":
            rtype = type_text(m.node.find("type"))
            doc = parse_doc(m.node)
            # int is a result code by the header's convention; any other value must be said.
            if rtype not in ("void", "int") and not doc.returns:
                problems.append(where + ": returns %s but has no @return" % rtype)
    return problems


# --- main -------------------------------------------------------------------------------

def is_public(m):
    return m.kind in ("function", "typedef", "enum") and m.name.startswith("wh_")


def write_gz(path, text):
    # mtime 0 and no file name inside: the same input gives the same bytes.
    with open(path, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as gz:
            gz.write(text.encode("utf-8"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("xml_dir")
    ap.add_argument("out_dir", nargs="?")
    ap.add_argument("--version", default="")
    ap.add_argument("--date", default=None)
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()

    members, groups = load(args.xml_dir)
    if args.check:
        problems = check(members)
        for p in problems:
            print("%s" % p, file=sys.stderr)
        print("xml2man: %d member(s) checked, %d problem(s)" % (len(members), len(problems)))
        return 1 if problems else 0
    if not args.out_dir:
        ap.error("OUT_DIR is required unless --check")

    # No date unless the build gives one (SOURCE_DATE_EPOCH): the same header makes the
    # same pages, on any day and any architecture (Multi-Arch: same needs that).
    date = args.date
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if date is None and epoch:
        date = datetime.datetime.fromtimestamp(int(epoch), datetime.timezone.utc).strftime("%Y-%m-%d")

    public = [m for m in members if is_public(m)]
    pages = {m.name for m in public}
    members_by_id = {m.id: m for m in members}
    docs = {m.id: parse_doc(m.node) for m in members}
    ctx = (args.version, date, members_by_id, docs, groups, pages)

    os.makedirs(args.out_dir, exist_ok=True)
    for old in os.listdir(args.out_dir):
        if old.endswith(".3.gz"):
            os.remove(os.path.join(args.out_dir, old))
    for m in public:
        write_gz(os.path.join(args.out_dir, m.name + ".3.gz"), member_page(m, docs[m.id], ctx))

    file_node = None
    index = ET.parse(os.path.join(args.xml_dir, "index.xml")).getroot()
    for comp in index.findall("compound"):
        if comp.get("kind") == "file" and comp.findtext("name") == "webhook.h":
            file_node = ET.parse(os.path.join(args.xml_dir, comp.get("refid") + ".xml")).getroot().find("compounddef")
    write_gz(os.path.join(args.out_dir, "libwebhook.3.gz"),
             overview_page(file_node, members, groups, args.version, date, pages))
    print("xml2man: %d pages in %s" % (len(public) + 1, args.out_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
