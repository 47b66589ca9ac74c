"""Span-tagging schemes (IOB1, IOB2/BIO, BIOES/IOBES): conversion, and the structure a scheme
allows.  The one place that knows what a tag prefix means; pure Python (no torch, no datasets).

Tu & Gimpel (2019, §5) tag CoNLL-2003 in BIOES (17 labels); the energy's hard constraints
(:mod:`spacy_infnet.core.constraints`) are built from :func:`allowed_structure`, and spaCy's own
BILUO labels are read with :func:`biluo_to_bioes`.

All conversion functions work on plain Python lists of string tags such as
``["B-PER", "E-PER", "O", "S-LOC"]``.  A tag is either ``"O"`` or
``PREFIX-TYPE`` where ``PREFIX`` is one of ``B``, ``I``, ``E``, ``S`` and
``TYPE`` is the entity type (it may itself contain hyphens; only the first
hyphen separates the prefix).

Decoding (:func:`tags_to_spans`) is deliberately lenient so that it can be
applied to model output: it never raises on an ill-formed *sequence* and never
drops a whole sentence.  Every conversion goes through spans, so its output is
always a well-formed sequence in the target scheme.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

__all__ = [
    "SCHEMES",
    "allowed_structure",
    "biluo_to_bioes",
    "bioes_to_iob2",
    "convert_scheme",
    "detect_scheme",
    "entity_types",
    "iob1_to_iob2",
    "iob2_to_bioes",
    "labels_for_scheme",
    "normalize_scheme",
    "spans_to_tags",
    "split_tag",
    "tags_to_spans",
]

#: Canonical scheme names.
SCHEMES: tuple[str, ...] = ("iob1", "iob2", "bioes")

_ALIASES = {
    "iob1": "iob1",
    "iob2": "iob2",
    "bio": "iob2",
    "bioes": "bioes",
    "iobes": "bioes",
}

_PREFIXES = ("B", "I", "E", "S")

Span = tuple[int, int, str]


def normalize_scheme(scheme: str) -> str:
    """Return the canonical name ("iob1", "iob2" or "bioes") of ``scheme``.

    Accepts the aliases "bio" (= "iob2") and "iobes" (= "bioes"),
    case-insensitively.

    Raises:
        ValueError: if ``scheme`` is not a known scheme name.
    """
    key = str(scheme).strip().lower()
    if key not in _ALIASES:
        known = ", ".join(sorted(_ALIASES))
        raise ValueError(f"Unknown tagging scheme {scheme!r}; known schemes: {known}")
    return _ALIASES[key]


def split_tag(tag: str) -> tuple[str, str]:
    """Split a tag into ``(prefix, type)``.

    Returns ``("O", "")`` for ``"O"``.  ``"B-PER"`` gives ``("B", "PER")``.
    A tag that has no recognised ``B-``/``I-``/``E-``/``S-`` prefix (for
    example a bare ``"PER"`` as in IO tagging) is read as ``("I", tag)``, i.e.
    as inside an entity of that type.  Never raises for a string.
    """
    if tag == "O":
        return "O", ""
    if len(tag) > 2 and tag[1] == "-" and tag[0] in _PREFIXES:
        return tag[0], tag[2:]
    return "I", tag


def tags_to_spans(tags: Iterable[str], scheme: str = "bioes") -> list[Span]:
    """Decode a tag sequence into entity spans.

    Returns a list of ``(start, end, label)`` tuples, ``end`` exclusive, in
    order of ``start``; spans never overlap.

    The decoder never raises on an ill-formed sequence and never drops a whole
    sentence.  Repairs:

    * ``I-X``/``E-X`` without an open entity of type ``X`` starts a new entity
      (``E-X`` alone then gives a one-token entity);
    * ``B-X``/``I-X`` left open is closed where the entity ends (before the
      next ``O``, ``B-``, ``S-``, a type change, or the end of the sentence);
    * a type change closes the old entity;
    * ``B-X`` always starts a new entity, ``S-X`` is always a one-token entity.

    The same rules read IOB1, IOB2 and BIOES correctly, so ``scheme`` only
    has to be a valid scheme name.

    Raises:
        ValueError: if ``scheme`` is not a known scheme name.
    """
    normalize_scheme(scheme)
    spans: list[Span] = []
    start: int | None = None
    label = ""
    n = 0
    for i, tag in enumerate(tags):
        n = i + 1
        prefix, typ = split_tag(tag)
        if prefix == "O":
            if start is not None:
                spans.append((start, i, label))
                start = None
            continue
        continues = start is not None and typ == label and prefix in ("I", "E")
        if not continues:
            if start is not None:
                spans.append((start, i, label))
            start, label = i, typ
        if prefix in ("E", "S"):
            spans.append((start, i + 1, label))
            start = None
    if start is not None:
        spans.append((start, n, label))
    return spans


def spans_to_tags(n_tokens: int, spans: Iterable[Sequence], scheme: str = "bioes") -> list[str]:
    """Encode entity spans as a tag sequence of length ``n_tokens``.

    ``spans`` holds ``(start, end, label)`` triples with ``end`` exclusive
    (any order).  In IOB1, ``B-`` is only used for an entity that directly
    follows another entity of the same type.

    Returns a list of ``n_tokens`` string tags.

    Raises:
        ValueError: for an unknown scheme, a span that is empty, out of range
            or has an empty label, or spans that overlap.
    """
    scheme = normalize_scheme(scheme)
    n_tokens = int(n_tokens)
    if n_tokens < 0:
        raise ValueError(f"n_tokens must be >= 0, got {n_tokens}")
    tags = ["O"] * n_tokens
    ordered = sorted((int(s), int(e), str(lab)) for s, e, lab in spans)
    prev_end, prev_label = -1, None
    for start, end, label in ordered:
        if not 0 <= start < end <= n_tokens:
            raise ValueError(f"Span {(start, end, label)} is empty or outside 0..{n_tokens}")
        if not label or label == "O":
            raise ValueError(f"Span {(start, end, label)} has an invalid label")
        if start < prev_end:
            raise ValueError(f"Span {(start, end, label)} overlaps the previous span")
        if scheme == "bioes":
            if end - start == 1:
                tags[start] = f"S-{label}"
            else:
                tags[start] = f"B-{label}"
                for k in range(start + 1, end - 1):
                    tags[k] = f"I-{label}"
                tags[end - 1] = f"E-{label}"
        elif scheme == "iob2":
            tags[start] = f"B-{label}"
            for k in range(start + 1, end):
                tags[k] = f"I-{label}"
        else:  # iob1
            touching = start == prev_end and label == prev_label
            tags[start] = f"B-{label}" if touching else f"I-{label}"
            for k in range(start + 1, end):
                tags[k] = f"I-{label}"
        prev_end, prev_label = end, label
    return tags


def convert_scheme(tags: Iterable[str], source: str, target: str) -> list[str]:
    """Convert ``tags`` from scheme ``source`` to scheme ``target``.

    Schemes: "iob1", "iob2" (alias "bio"), "bioes" (alias "iobes").  The
    conversion decodes spans with :func:`tags_to_spans` and re-encodes them,
    so an ill-formed input is repaired rather than rejected and the output is
    always well formed in ``target`` (also when ``source == target``).

    Returns a new list of the same length.

    Raises:
        ValueError: if either scheme name is unknown.
    """
    tags = list(tags)
    normalize_scheme(source)
    return spans_to_tags(len(tags), tags_to_spans(tags, source), target)


def iob1_to_iob2(tags: Iterable[str]) -> list[str]:
    """Convert IOB1 tags (``B-`` only between touching same-type entities) to IOB2."""
    return convert_scheme(tags, "iob1", "iob2")


def iob2_to_bioes(tags: Iterable[str]) -> list[str]:
    """Convert IOB2 (BIO) tags to BIOES."""
    return convert_scheme(tags, "iob2", "bioes")


def bioes_to_iob2(tags: Iterable[str]) -> list[str]:
    """Convert BIOES tags to IOB2 (BIO)."""
    return convert_scheme(tags, "bioes", "iob2")


def entity_types(tags: Iterable[str]) -> list[str]:
    """Return the sorted entity types occurring in ``tags`` ("O" excluded)."""
    return sorted({split_tag(t)[1] for t in tags if t != "O"})


def labels_for_scheme(types: Iterable[str], scheme: str) -> list[str]:
    """Return the ordered label list for entity ``types`` under ``scheme``.

    ``"O"`` comes first, then for each type, sorted alphabetically, its
    prefixes in the order B, I, E, S (BIOES) or B, I (IOB2 and IOB1).
    Duplicates and ``"O"`` in ``types`` are ignored.  For the four CoNLL-2003
    types under BIOES this gives 17 labels.

    Raises:
        ValueError: if ``scheme`` is unknown or a type is empty.
    """
    scheme = normalize_scheme(scheme)
    prefixes = ("B", "I", "E", "S") if scheme == "bioes" else ("B", "I")
    unique = set()
    for typ in types:
        typ = str(typ)
        if not typ:
            raise ValueError("Entity types must be non-empty strings")
        if typ != "O":
            unique.add(typ)
    labels = ["O"]
    for typ in sorted(unique):
        labels.extend(f"{p}-{typ}" for p in prefixes)
    return labels


def detect_scheme(labels: Iterable[str]) -> str:
    """ "bioes" if any label carries an ``S-`` or ``E-`` prefix, else "iob2"."""
    return "bioes" if any(str(lab)[:2] in ("S-", "E-") for lab in labels) else "iob2"


def biluo_to_bioes(tags: Iterable[str]) -> list[str]:
    """spaCy's BILUO tags (``U-`` for a one-token entity, ``L-`` for the last token) as BIOES.

    Raises:
        ValueError: a tag that is not "O" or B-/I-/L-/U-<TYPE> (e.g. spaCy's "-" for a
            misaligned token: leave such sentences out first).
    """
    rename = {"U": "S", "L": "E", "B": "B", "I": "I"}
    out = []
    for tag in tags:
        if tag == "O":
            out.append(tag)
            continue
        prefix, sep, typ = str(tag).partition("-")
        if not sep or not typ or prefix not in rename:
            raise ValueError(f"tag {tag!r} is not a BILUO tag (O, B-X, I-X, L-X or U-X)")
        out.append(f"{rename[prefix]}-{typ}")
    return out


# -- the structure a scheme allows (the energy's hard constraints) -----------------------------
#: Schemes that :func:`allowed_structure` knows ("none": every sequence is allowed).
CONSTRAINT_SCHEMES = {
    "bioes": "bioes",
    "iobes": "bioes",
    "iob2": "iob2",
    "bio": "iob2",
    "none": "none",
}


def _parse(label: str, scheme: str) -> tuple[str, str | None]:
    """``(prefix, type)`` of a strict ``scheme`` label; prefix ``"O"`` has type ``None``."""
    if not isinstance(label, str):
        raise ValueError(f"label {label!r} is not a string")  # noqa: TRY004
    if label == "O":
        return "O", None
    prefix, sep, typ = label.partition("-")
    allowed = {"B", "I"} if scheme == "iob2" else {"B", "I", "E", "S"}
    if not sep or not typ or prefix not in allowed:
        raise ValueError(
            f"label {label!r} is not a valid {scheme.upper()} label "
            f"(expected 'O' or one of {sorted(allowed)} followed by '-<TYPE>')"
        )
    return prefix, typ


def _follows_bioes(prev: tuple[str, str | None], nxt: tuple[str, str | None]) -> bool:
    p_pre, p_typ = prev
    n_pre, n_typ = nxt
    if p_pre in ("O", "E", "S"):
        return n_pre in ("O", "B", "S")
    # inside an entity (B-X or I-X): must continue with I-X or close with E-X
    return n_pre in ("I", "E") and n_typ == p_typ


def _follows_iob2(prev: tuple[str, str | None], nxt: tuple[str, str | None]) -> bool:
    p_pre, p_typ = prev
    n_pre, n_typ = nxt
    if n_pre == "I":
        return p_pre in ("B", "I") and p_typ == n_typ
    return True


def allowed_structure(
    labels: Sequence[str], scheme: str = "bioes"
) -> tuple[list[list[bool]], list[bool], list[bool]]:
    """Which label bigrams, first labels and last labels a tagging scheme allows.

    Schemes (case-insensitive):

    * ``"bioes"`` (alias ``"iobes"``): a sequence may start with ``O``, ``B-*``, ``S-*`` and end
      with ``O``, ``E-*``, ``S-*``; after ``O``, ``E-X`` or ``S-X`` come ``O``, ``B-*`` or
      ``S-*``; after ``B-X`` or ``I-X`` only ``I-X`` or ``E-X`` (same type).
    * ``"iob2"`` (alias ``"bio"``): ``I-X`` may only follow ``B-X`` or ``I-X`` and may not start
      a sequence; everything else is allowed.
    * ``"none"``: everything allowed (labels are not parsed).

    Args:
        labels: label strings in label-index order (L labels).
        scheme: one of the names above.

    Returns:
        ``(transitions, start, end)``: ``transitions[i][j]`` is True when label i may be
        followed by label j ([L][L]); ``start[i]`` / ``end[i]`` when a sequence may begin / end
        with label i ([L] each).

    Raises:
        ValueError: unknown scheme, or a label that does not fit the scheme (the message
            names the label).
    """
    key = CONSTRAINT_SCHEMES.get(str(scheme).lower())
    if key is None:
        raise ValueError(
            f"unknown tagging scheme {scheme!r}; expected one of {sorted(CONSTRAINT_SCHEMES)}"
        )
    labels = list(labels)
    n = len(labels)
    if key == "none":
        return [[True] * n for _ in range(n)], [True] * n, [True] * n
    parsed = [_parse(lab, key) for lab in labels]
    if key == "bioes":
        follows = _follows_bioes
        start = [p in ("O", "B", "S") for p, _ in parsed]
        end = [p in ("O", "E", "S") for p, _ in parsed]
    else:
        follows = _follows_iob2
        start = [p != "I" for p, _ in parsed]
        end = [True] * n
    return [[follows(a, b) for b in parsed] for a in parsed], start, end
