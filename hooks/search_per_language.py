"""One search index per language, with math in the result snippets as readable text.

mkdocs-static-i18n builds the site once per language and Material's search plugin writes one
``search/search_index.json`` for all of them, so a search from ``/ko/`` lists English and
Chinese pages too. After the last language build this hook splits that index by the
language prefix of each entry's location: ``/search/search_index.json`` keeps the English
pages, ``/ko/search/search_index.json`` the Korean ones (locations relative to ``/ko/``), and
so on. Material's JavaScript loads the index from ``<base>/search/search_index.json`` and
resolves result links against the same ``base`` (``__config`` in each page), so on Korean
and Chinese pages ``base`` is pointed at the language's root instead of the site's root;
nothing else in the site uses it (instant navigation and versioning are off).

The index keeps the search plugin's ``config`` (languages, separator, pipeline), so the
tokenization that ``tests/test_search_separator.py`` pins is unchanged.

Code names such as ``running_var`` are single tokens (the search separator in ``mkdocs.yml``
does not split at underscores), so a search for a name ranks the pages that use it first.
Each entry gets a ``parts`` field with the parts of its names (``running var``), indexed like
the text, so that a search for one part still finds the name, and a ``names`` field, boosted,
with the names that share a word with the entry's anchor (the same in every language):
``running_var`` on ``#running-averages``, ``fold_batch_norm`` on
``#bnnotes.batchnorm.fold_batch_norm``. A search for a name thus lists first the section
about it rather than one that merely uses it as often.

The indexed text is the page's HTML before ``hooks/katex.py`` renders its math, so it holds
TeX such as ``\\(\\alpha\\) = momentum``; Material shows that text in the result snippets.
:func:`tex_to_text` rewrites every ``\\(...\\)`` and ``\\[...\\]`` as plain text with Unicode
symbols (``α = momentum``, ``m/(m-1)``, ``x̂ᵢ``).
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

from mkdocs.plugins import event_priority

INDEX = Path("search") / "search_index.json"
CONFIG_BASE_RE = re.compile(
    r'(<script id="__config" type="application/json">\{.*?"base": ")([^"]*)(")',
    re.S,
)
MATH_RE = re.compile(r"\\\((.+?)\\\)|\\\[(.+?)\\\]", re.S)
CODE_NAME_RE = re.compile(r"\b[A-Za-z]\w*_\w+")
TAG_RE = re.compile(r"<[^>]+>")
FIELDS = {"parts": {"boost": 1.0}, "names": {"boost": 10.0}}


def _words(text: str) -> list[str]:
    return text.split()


def _pairs(table: str) -> dict[str, str]:
    """A table of whitespace-separated ``name value`` pairs as a dict."""
    words = _words(table)
    return dict(zip(words[::2], words[1::2], strict=True))


def _chars(keys: str, values: str) -> dict[str, str]:
    return dict(zip(keys, values, strict=True))


GREEK = _words(
    "alpha beta gamma delta epsilon varepsilon zeta eta theta vartheta iota kappa lambda "
    "mu nu xi pi varpi rho varrho sigma varsigma tau upsilon phi varphi chi psi omega "
    "Gamma Delta Theta Lambda Xi Pi Sigma Upsilon Phi Psi Omega"
)
SYMBOLS = {
    **dict(
        zip(GREEK, "αβγδεεζηθϑικλμνξπϖρϱσςτυϕφχψωΓΔΘΛΞΠΣΥΦΨΩ", strict=True)
    ),
    **_pairs("""
        cdot · div ÷ ast ∗ star ⋆ circ ∘
        cup ∪ cap ∩ setminus ∖ emptyset ∅ forall ∀ exists ∃ neg ¬ land ∧ lor ∨ wedge ∧
        vee ∨ perp ⊥ top ⊤ colon : sum ∑ prod ∏ int ∫ oint ∮ partial ∂ nabla ∇
        infty ∞ ell ℓ hbar ℏ prime ′ dagger † dots … ldots … cdots ⋯ vdots ⋮ ddots ⋱
        { { } } | ‖ Vert ‖ lVert ‖ rVert ‖ vert | lvert | rvert | langle ⟨ rangle ⟩
        lfloor ⌊ rfloor ⌋ lceil ⌈ rceil ⌉ lbrace { rbrace } lbrack [ rbrack ]
        & & % % _ _ # # $ $
    """),
    # Relations, arrows and binary operators read with a space on each side (TeX spaces
    # them itself).
    **{
        name: f" {symbol} "
        for name, symbol in _pairs("""
            le ≤ leq ≤ ge ≥ geq ≥ ne ≠ neq ≠ ll ≪ gg ≫ approx ≈ sim ∼ simeq ≃ cong ≅
            equiv ≡ propto ∝ triangleq ≜ coloneqq ≔ to → rightarrow → leftarrow ←
            gets ← Rightarrow ⇒ Leftarrow ⇐ Leftrightarrow ⇔ iff ⇔ implies ⇒ mapsto ↦
            in ∈ notin ∉ ni ∋ subset ⊂ subseteq ⊆ supset ⊃ mid |
            times × pm ± mp ∓ odot ⊙ otimes ⊗ oplus ⊕
        """).items()
    },
    # spacing
    **dict.fromkeys(
        [",", ";", ":", ">", " ", "quad", "qquad", "enspace"], " "
    ),
    "!": "",
}
# Commands that only size or style what follows: dropped, their argument kept.
DROPPED = set(
    _words("""
    big Big bigg Bigg bigl bigr Bigl Bigr biggl biggr displaystyle textstyle
    scriptstyle limits nolimits nonumber notag
""")
)
# \left( and \right): the delimiter stays, "\left." (no delimiter) goes.
DELIMITER_SIZES = {"left", "right", "middle"}
# Commands whose one argument is shown as it is.
FONTS = set(
    _words("""
    mathrm mathit mathbf mathsf mathtt mathcal mathscr mathfrak boldsymbol bm text
    textrm textit textbf texttt textsf operatorname mbox hbox underline underbrace
    overbrace
""")
)
BLACKBOARD = _chars("REZNQCP", "ℝ𝔼ℤℕℚℂℙ")
ACCENTS = {
    **dict.fromkeys(["hat", "widehat"], "\u0302"),
    **dict.fromkeys(["bar", "overline"], "\u0304"),
    **dict.fromkeys(["tilde", "widetilde"], "\u0303"),
    "dot": "\u0307",
    "ddot": "\u0308",
    "vec": "\u20d7",
    "check": "\u030c",
}
FRACTIONS = {"frac", "dfrac", "tfrac", "cfrac"}
ENVIRONMENTS = {
    "pmatrix": ("(", ")"),
    "bmatrix": ("[", "]"),
    "Bmatrix": ("{", "}"),
    "vmatrix": ("|", "|"),
    "Vmatrix": ("‖", "‖"),
    "cases": ("{ ", ""),
}
SUPERSCRIPTS = _chars(
    "0123456789+-=()abcdefghijklmnoprstuvwxyzABDEGHIJKLMNOPRTUVWβγδθιφχ′⊤*",
    "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁼⁽⁾ᵃᵇᶜᵈᵉᶠᵍʰⁱʲᵏˡᵐⁿᵒᵖʳˢᵗᵘᵛʷˣʸᶻᴬᴮᴰᴱᴳᴴᴵᴶᴷᴸᴹᴺᴼᴾᴿᵀᵁⱽᵂᵝᵞᵟᶿᶥᵠᵡ′ᵀ*",
)
SUBSCRIPTS = _chars(
    "0123456789+-=()aehijklmnoprstuvxβγρφχ",
    "₀₁₂₃₄₅₆₇₈₉₊₋₌₍₎ₐₑₕᵢⱼₖₗₘₙₒₚᵣₛₜᵤᵥₓᵦᵧᵨᵩᵪ",
)
# Single characters with a meaning of their own outside a command.
CHARACTERS = {"{": None, "}": "", "$": "", "~": " ", "&": " ", "'": "′"}
TOKEN_RE = re.compile(r"\\[A-Za-z]+|\\.|\s+|.", re.S)


class _Parser:
    """A small recursive reader of TeX tokens that writes plain text."""

    def __init__(self, tex: str):
        self.tokens: list[str] = []
        for token in TOKEN_RE.findall(tex):
            # A control word eats the spaces after it, as in TeX: "\lVert x" is "‖x".
            after_word = self.tokens and re.fullmatch(
                r"\\[A-Za-z]+", self.tokens[-1]
            )
            if not (token.isspace() and after_word):
                self.tokens.append(token)
        self.i = 0

    def peek(self) -> str | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def next(self) -> str | None:
        token = self.peek()
        self.i += token is not None
        return token

    def skip_space(self) -> None:
        while (t := self.peek()) is not None and t.isspace():
            self.i += 1

    def group(self) -> str:
        """The text of the next argument: a {group} or a single token."""
        self.skip_space()
        token = self.peek()
        if token == "{":
            self.i += 1
            return self.until("}")
        return "" if token is None else self.atom()

    def raw_group(self) -> str:
        """The characters of the next {group}, unconverted (environment names, labels)."""
        self.skip_space()
        if self.peek() != "{":
            return ""
        self.i += 1
        out = []
        while (t := self.next()) not in (None, "}"):
            out.append(t)
        return "".join(out)

    def optional(self) -> None:
        """Skip an optional [argument]."""
        self.skip_space()
        if self.peek() == "[":
            while self.next() not in (None, "]"):
                pass

    def until(self, end: str | None) -> str:
        out = []
        while (t := self.peek()) is not None and t != end:
            out.append(self.atom())
        self.i += t is not None
        return "".join(out)

    def script(self, table: dict[str, str], mark: str) -> str:
        body = self.group().strip()
        if body and all(c in table for c in body):
            return "".join(table[c] for c in body)
        return mark + _wrap(body)

    def atom(self) -> str:
        token = self.next()
        if token is None:
            return ""
        if token.isspace():
            return " "
        if token == "{":
            return self.until("}")
        if token in CHARACTERS:
            return CHARACTERS[token] or ""
        if token in "^_":
            return self.script(
                *((SUPERSCRIPTS, "^") if token == "^" else (SUBSCRIPTS, "_"))
            )
        if token.startswith("\\"):
            return self.command(token[1:])
        return token

    def command(self, name: str) -> str:
        if name == "\\":
            return "; "
        if name in SYMBOLS:
            return SYMBOLS[name]
        if name in DELIMITER_SIZES:
            self.skip_space()
            self.i += self.peek() == "."
            return ""
        if name in DROPPED:
            return ""
        if name in FRACTIONS:
            numerator, denominator = self.group().strip(), self.group().strip()
            return f"{_wrap(numerator)}/{_wrap(denominator)}"
        if name == "sqrt":
            self.optional()
            return "√" + _wrap(self.group().strip())
        if name in ACCENTS:
            body = self.group().strip()
            return body + ACCENTS[name] if len(body) == 1 else body
        if name == "mathbb":
            return "".join(BLACKBOARD.get(c, c) for c in self.group().strip())
        if name in FONTS:
            return self.group()
        return self.special(name)

    def special(self, name: str) -> str:
        """Colours, labels, tags and environments; any other command reads as its name."""
        if name in ("color", "textcolor"):
            self.raw_group()
            return self.group() if name == "textcolor" else ""
        if name in ("label", "tag"):
            body = self.raw_group()
            return f" ({body})" if name == "tag" else ""
        if name in ("begin", "end"):
            env = self.raw_group().rstrip("*")
            if name == "begin" and env == "array":
                self.raw_group()  # the column specification
            return ENVIRONMENTS.get(env, ("", ""))[name == "end"]
        return name  # \log, \max, \exp, \Var ...


def _enclosed(text: str) -> bool:
    """Whether text is one pair of parentheses around the rest: (a+b), not (a)+(b)."""
    depth = 0
    for i, c in enumerate(text):
        depth += (c == "(") - (c == ")")
        if depth == 0:
            return i == len(text) - 1 and i > 0
    return False


def _wrap(text: str) -> str:
    """text in parentheses when it is more than one symbol or name."""
    marks = (
        "′\u0300-\u036f\u20d7"
        + "".join(SUPERSCRIPTS.values())
        + "".join(SUBSCRIPTS.values())
    )
    single = re.fullmatch(rf"√?(?:\d+(?:\.\d+)?|\w)[{marks}]*|[A-Za-z]+", text)
    if single or _enclosed(text.removeprefix("√")):
        return text
    return f"({text})"


def tex_to_text(tex: str) -> str:
    """The TeX of one formula as plain text with Unicode symbols."""
    text = _Parser(tex).until(None)
    return re.sub(r"\s+", " ", text).strip()


def math_to_text(text: str) -> str:
    """HTML text with every \\(...\\) and \\[...\\] replaced by its plain-text form."""

    def replace(m: re.Match) -> str:
        tex = html.unescape(
            m.group(1) if m.group(1) is not None else m.group(2)
        )
        return html.escape(tex_to_text(tex), quote=False)

    return MATH_RE.sub(replace, text)


def code_names(*texts: str) -> list[str]:
    """The code names (words with an underscore) in texts, each once, in order."""
    return list(
        dict.fromkeys(
            name
            for text in texts
            for name in CODE_NAME_RE.findall(TAG_RE.sub(" ", text))
        )
    )


def name_fields(doc: dict) -> dict[str, str]:
    """The parts and names fields of an index entry (see the module docstring)."""
    names = code_names(doc["title"], doc["text"])
    anchor = set(re.split(r"\W+|_", doc["location"].rpartition("#")[2])) - {""}
    fields = {
        "parts": " ".join(name.replace("_", " ") for name in names),
        "names": " ".join(
            name for name in names if anchor & set(name.split("_"))
        ),
    }
    return {key: value for key, value in fields.items() if value}


def _languages(config) -> tuple[str, list[str]]:
    """The default language and the other built languages of the i18n plugin."""
    i18n = config.plugins.get("i18n")
    if i18n is None:
        return "", []
    langs = [lang for lang in i18n.config.languages if lang.build]
    default = next(lang.locale for lang in langs if lang.default)
    return default, [lang.locale for lang in langs if not lang.default]


def on_post_page(output, page, config):
    _, others = _languages(config)
    lang = page.url.split("/", 1)[0]
    if lang not in others:
        return output

    def rebase(m: re.Match) -> str:
        # The page's base is the site root ("../.."); its language root is one level down.
        parts = m.group(2).split("/")
        base = "/".join(parts[:-1]) if len(parts) > 1 else "."
        return m.group(1) + base + m.group(3)

    return CONFIG_BASE_RE.sub(rebase, output, count=1)


@event_priority(
    -200
)  # after mkdocs-static-i18n (-100) has written the merged index
def on_post_build(config):
    i18n = config.plugins.get("i18n")
    if i18n is not None and getattr(i18n, "building", False):
        return  # one of the language builds inside the first; the index is not merged yet
    site = Path(config.site_dir)
    merged = site / INDEX
    if not merged.is_file():
        return
    index = json.loads(merged.read_text("utf-8"))
    default, others = _languages(config)
    split: dict[str, list[dict]] = {lang: [] for lang in [default, *others]}
    for doc in index["docs"]:
        lang = doc["location"].split("/", 1)[0]
        if lang in others:
            doc = {**doc, "location": doc["location"][len(lang) + 1 :]}
        else:
            lang = default
        doc["title"] = math_to_text(doc["title"])
        doc["text"] = math_to_text(doc["text"])
        doc.update(name_fields(doc))
        split[lang].append(doc)
    index["config"]["fields"] = {**index["config"]["fields"], **FIELDS}
    for lang, docs in split.items():
        out = site / ("" if lang == default else lang) / INDEX
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(
            json.dumps(
                {**index, "docs": docs},
                ensure_ascii=False,
                separators=(",", ":"),
            ),
            "utf-8",
        )
