"""Answers as text: the normal form two answers are matched in, and candidate sets without clashes."""
from __future__ import annotations

import unicodedata

import numpy as np

__all__ = ["normalise", "pick_candidates", "words"]


def normalise(text: str) -> str:
    """Casefold, strip accents, split at hyphens and slashes, drop other punctuation and a leading "the".

    "Washington, D.C." -> "washington dc"; "Bogotá" -> "bogota"; "the Caribbean" -> "caribbean".
    """
    text = unicodedata.normalize("NFKD", str(text).casefold())
    out = []
    for ch in text:
        cat = unicodedata.category(ch)
        if unicodedata.combining(ch) or ch in "ʻʼ":
            continue
        if cat == "Pd" or ch == "/":
            out.append(" ")
        elif not cat.startswith("P"):
            out.append(ch)
    text = " ".join("".join(out).split())
    return text.removeprefix("the ")


def words(text: str) -> tuple[str, ...]:
    return tuple(normalise(text).split())



def pick_candidates(candidates: list[str], aliases: set[str], tiers: list[list[str]], n: int,
          rng: np.random.Generator) -> list[str]:
    """Fill ``candidates`` up to n from the tiers in order, each shuffled; skip clashes.

    A value clashes when it is an accepted answer of the fact, or when its normalised words are a
    prefix of another candidate's or have one as a prefix (equal after normalising included).
    """
    chosen = [words(c) for c in candidates]
    for tier in tiers:
        for j in rng.permutation(len(tier)):
            if len(candidates) >= n:
                return candidates
            v, w = tier[j], words(tier[j])
            if " ".join(w) in aliases or any(w[:len(c)] == c or c[:len(w)] == w for c in chosen):
                continue
            candidates.append(v)
            chosen.append(w)
    return candidates
