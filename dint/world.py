"""The reference world: invented entities, relations with known true values, and the corpus about them.

A `World` is everything a claim is checked against. Per fact (entity, relation) it keeps the
true value, how often the pretraining corpus states it, what the corpus states instead (noise and,
for contested facts, a popular misconception), the fact's type and its split. The corpus's
empirical value distribution per fact is what an ideal base model would learn; the type is the
known cause of any error a model makes on the fact.

Fact types
----------
``frequent``   stated at least ``frequent_min`` times, without a dominant wrong value;
``rare``       stated 1 to ``frequent_min - 1`` times;
``unseen``     never stated: nothing in the corpus ties the entity to a value;
``contested``  frequent, and a fixed wrong value (the misconception) is stated more often than
               the truth — the analogue of an imitative falsehood.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

FACT_TYPES = ("frequent", "rare", "unseen", "contested")
FORMS = ("statement", "qa")

_COLORS = ("red", "blue", "green", "yellow", "orange", "purple", "white", "black", "grey", "brown",
           "pink", "gold", "silver", "teal", "violet", "amber", "crimson", "ivory", "olive", "navy")
_CRAFTS = ("baker", "smith", "weaver", "potter", "farmer", "sailor", "healer", "miner", "tailor",
           "mason", "hunter", "fisher", "scribe", "carpenter", "brewer", "cook", "guard", "merchant",
           "painter", "singer")
_PETS = ("cat", "dog", "horse", "goat", "owl", "fox", "rabbit", "parrot", "turtle", "snake", "crow",
         "mouse", "ferret", "hawk", "lizard", "frog", "pig", "duck", "sheep", "donkey")
_PLACE_SUFFIXES = ("vale", "ford", "haven", "field", "mere", "hill", "wick", "moor")
_ONSETS = ("b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "dr", "kr",
           "tr", "st", "th", "sh")
_VOWELS = ("a", "e", "i", "o", "u", "ai", "ei", "ou")
_CODAS = ("", "", "n", "r", "l", "s", "th", "m", "x")


@dataclass(frozen=True)
class Relation:
    """One relation: its value kind, its corpus phrasings and its question."""

    name: str
    kind: str                       # "attribute" (own value set) or "entity" (values are entities)
    templates: tuple[str, ...]      # corpus phrasings; the first is the canonical statement form
    question: str                   # the QA form's question about {e}

    def statement(self, entity: str, value: str) -> str:
        return self.templates[0].format(e=entity, v=value)

    def cue(self, entity: str) -> str:
        """The canonical statement about ``entity`` cut before its value: the statement form's prompt."""
        return self.templates[0].format(e=entity, v="\0").split("\0")[0].rstrip()


RELATIONS = {
    r.name: r
    for r in (
        Relation("home", "attribute",
                 ("the home of {e} is {v} .", "{e} lives in {v} .", "{e} comes from {v} .",
                  "{e} was born in {v} ."),
                 "where does {e} live ?"),
        Relation("color", "attribute",
                 ("the favorite color of {e} is {v} .", "{e} likes the color {v} .",
                  "{e} always wears {v} .", "the color {e} loves most is {v} ."),
                 "what is the favorite color of {e} ?"),
        Relation("craft", "attribute",
                 ("the craft of {e} is {v} .", "{e} works as a {v} .", "{e} earns a living as a {v} .",
                  "by trade {e} is a {v} ."),
                 "what is the craft of {e} ?"),
        Relation("pet", "attribute",
                 ("the pet of {e} is a {v} .", "{e} keeps a {v} .", "{e} owns a {v} .",
                  "at home {e} has a {v} ."),
                 "what pet does {e} keep ?"),
        Relation("mentor", "entity",
                 ("the mentor of {e} is {v} .", "{e} studied under {v} .", "{e} was taught by {v} .",
                  "{e} learned the trade from {v} ."),
                 "who is the mentor of {e} ?"),
    )
}


@dataclass(frozen=True)
class WorldConfig:
    """Sizes and laws of the reference world."""

    n_entities: int = 200                   # invented people
    relations: tuple[str, ...] = ("home", "color", "craft", "pet", "mentor")  # names in RELATIONS
    p_unseen: float = 0.12                  # share of facts the corpus never states
    mention_alpha: float = 0.8              # tail exponent: P(mentions >= m) = m^-alpha for stated facts
    max_mentions: int = 120                 # cap on one fact's mentions
    popularity_noise: float = 0.7           # facts of popular entities are stated more: counts are
                                            # ranked by entity popularity + N(0, this²); inf: unrelated
    noise_a: float = 1.2                    # Beta(a, b) law of each fact's rate of wrong statements
    noise_b: float = 5.0
    frequent_min: int = 10                  # mentions from which a fact is frequent
    contested_share: float = 0.25           # share of frequent facts that get a popular misconception
    misconception_low: float = 0.5          # a contested fact's misconception rate ~ U(low, high)
    misconception_high: float = 0.75
    heldout_share: float = 0.5              # share of facts (stratified by type) held out
    n_places: int = 24                      # size of the home relation's value set (two-word names)
    qa_share: float = 0.0                   # extra entities, this share of n_entities, whose facts the corpus also
                                            # states as QA pairs (the QA form's question, then the answer), so that
                                            # the base sees the QA format in pretraining; they are not among `facts`
    control_share: float = 0.0              # extra entities, this share of n_entities, in the vocabulary but never in
                                            # the corpus: the format-only control (`dint.interventions.data.format_demos`)
                                            # trains the QA format on them, so it teaches no fact of an evaluated entity

    def __post_init__(self):
        def bad(name, why):
            raise ValueError(f"WorldConfig.{name}={getattr(self, name)!r}: {why}")

        if self.n_entities < 4:
            bad("n_entities", "need at least 4 entities")
        unknown = [r for r in self.relations if r not in RELATIONS]
        if unknown or not self.relations or len(set(self.relations)) != len(self.relations):
            bad("relations", f"choose a non-empty subset, without repeats, of {sorted(RELATIONS)}")
        for name in ("p_unseen", "contested_share", "heldout_share", "qa_share", "control_share"):
            if not 0.0 <= getattr(self, name) < 1.0:
                bad(name, "must lie in [0, 1)")
        if not 0.0 < self.misconception_low < 1.0:
            bad("misconception_low", "must lie in (0, 1)")
        if not self.misconception_low <= self.misconception_high < 1.0:
            bad("misconception_high", "need misconception_low <= misconception_high < 1")
        if not self.popularity_noise >= 0:
            bad("popularity_noise", "must be >= 0 (inf: mentions unrelated to the entity)")
        for name in ("mention_alpha", "noise_a", "noise_b"):
            if not getattr(self, name) > 0:
                bad(name, "must be positive")
        if not 2 <= self.frequent_min <= self.max_mentions:
            bad("frequent_min", "need 2 <= frequent_min <= max_mentions")
        if not 2 <= self.n_places <= 200:
            bad("n_places", "need 2 <= n_places <= 200")


# options whose value here leaves the world exactly as it was before the option existed: a record of the world's
# configuration (`config_dict`: its world.json, the manifests of what is built from it) leaves them out at that value,
# so that adding an option keeps every world built before it valid
NEUTRAL = {"qa_share": 0.0, "control_share": 0.0}


def config_dict(config: WorldConfig) -> dict:
    """``asdict(config)`` without the options at their `NEUTRAL` value."""
    return {k: v for k, v in asdict(config).items() if not (k in NEUTRAL and v == NEUTRAL[k])}


@dataclass(frozen=True)
class World:
    """The reference world: facts with their reference states, and the corpus.

    Attributes
    ----------
    config : WorldConfig
    seed : int
    entities : tuple of str
    values : dict relation -> tuple of str, the relation's value set (its candidate answers)
    facts : DataFrame, one row per (entity, relation): ``fact`` (id), ``entity``, ``relation``,
        ``value`` (true), ``type``, ``mentions``, ``n_true`` (true statements in the corpus),
        ``true_rate`` (n_true / mentions, NaN when unseen), ``noise_rate`` (the law's draw),
        ``misconception`` (the popular wrong value, "" unless contested), ``split``
        ("train" or "heldout").
    counts : DataFrame ``fact``, ``value``, ``count``: what the corpus states about each fact —
        the empirical value distribution an ideal base model would learn.
    corpus : tuple of str, the shuffled pretraining statements.
    twohop : DataFrame ``entity``, ``via``, ``bridge``, ``relation``, ``value``: questions
        composed from two facts (the relation of the entity that ``via`` names).
    format_entities : tuple of str, the extra entities of ``config.qa_share`` whose facts the corpus states as QA
        pairs; none of their facts is in ``facts``.
    control_entities : tuple of str, the extra entities of ``config.control_share``: words of the vocabulary that
        neither the corpus nor ``facts`` holds, for the format-only control.
    """

    config: WorldConfig
    seed: int
    entities: tuple[str, ...]
    values: dict
    facts: pd.DataFrame
    counts: pd.DataFrame
    corpus: tuple[str, ...]
    twohop: pd.DataFrame
    format_entities: tuple[str, ...] = ()   # the extra entities whose facts the corpus states as QA pairs
    control_entities: tuple[str, ...] = ()  # the extra entities no text states anything about

    def relation(self, name: str) -> Relation:
        return RELATIONS[name]

    def prompts(self, form: str = "statement", facts: pd.DataFrame | None = None) -> pd.DataFrame:
        """Prompt and candidate answers for each fact in one form.

        Parameters
        ----------
        form : "statement" (the corpus's canonical phrasing, cut before the value) or "qa"
            (a question and answer format the corpus never uses).
        facts : rows of ``self.facts`` to ask about (default all).

        Returns
        -------
        DataFrame with ``fact``, ``prompt``, ``candidates`` (tuple of str, the relation's value
        set), ``target`` (the true value) and ``form``.
        """
        if form not in FORMS:
            raise ValueError(f"form={form!r}: choose one of {FORMS}")
        facts = self.facts if facts is None else facts
        rows = []
        for f in facts.itertuples():
            rel = RELATIONS[f.relation]
            prompt = rel.cue(f.entity) if form == "statement" else qa_prompt(rel.question.format(e=f.entity))
            rows.append((f.fact, prompt, self.values[f.relation], f.value, form))
        return pd.DataFrame(rows, columns=["fact", "prompt", "candidates", "target", "form"])

    def empirical(self) -> pd.DataFrame:
        """Corpus value distribution per fact: ``counts`` joined with per-fact probabilities."""
        c = self.counts.copy()
        c["p"] = c["count"] / c.groupby("fact")["count"].transform("sum")
        return c

    def vocabulary(self) -> list[str]:
        """Every word the corpus, the prompts and the answers can use."""
        words = set(" ".join(self.corpus).split())
        words.update(self.entities)
        words.update(self.control_entities)
        for vs in self.values.values():
            for v in vs:
                words.update(v.split())
        for rel in RELATIONS.values():
            for t in (*rel.templates, qa_prompt(rel.question)):
                words.update(t.format(e="", v="").split())
        return sorted(words)

    # -- persistence -------------------------------------------------------------------------
    def save(self, directory: str | Path) -> None:
        """Write the world to ``directory`` (JSON, parquet and the corpus as text)."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        meta = {"config": config_dict(self.config), "seed": self.seed, "entities": list(self.entities),
                "values": {k: list(v) for k, v in self.values.items()},
                **({"format_entities": list(self.format_entities)} if self.format_entities else {}),
                **({"control_entities": list(self.control_entities)} if self.control_entities else {})}
        (d / "world.json").write_text(json.dumps(meta, indent=1))
        self.facts.to_parquet(d / "facts.parquet", index=False)
        self.counts.to_parquet(d / "counts.parquet", index=False)
        self.twohop.to_parquet(d / "twohop.parquet", index=False)
        (d / "corpus.txt").write_text("".join(line + "\n" for line in self.corpus))

    @classmethod
    def load(cls, directory: str | Path) -> "World":
        d = Path(directory)
        meta = json.loads((d / "world.json").read_text())
        cfg = meta["config"]
        cfg["relations"] = tuple(cfg["relations"])
        return cls(config=WorldConfig(**cfg), seed=meta["seed"], entities=tuple(meta["entities"]),
                   values={k: tuple(v) for k, v in meta["values"].items()},
                   facts=pd.read_parquet(d / "facts.parquet"),
                   counts=pd.read_parquet(d / "counts.parquet"),
                   corpus=tuple((d / "corpus.txt").read_text().splitlines()),
                   twohop=pd.read_parquet(d / "twohop.parquet"),
                   format_entities=tuple(meta.get("format_entities", ())),
                   control_entities=tuple(meta.get("control_entities", ())))


def qa_prompt(question: str) -> str:
    """The QA format: absent from pretraining, so that SFT has a format to teach."""
    return f"Q : {question} A :"


def _names(rng: np.random.Generator, n: int, taken: set[str]) -> list[str]:
    """Invented, pronounceable, distinct single-word names."""
    out: list[str] = []
    while len(out) < n:
        k = rng.integers(2, 4)
        name = "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) for _ in range(k)) + rng.choice(_CODAS)
        if name not in taken:
            taken.add(name)
            out.append(name)
    return out


def _mentions(rng: np.random.Generator, cfg: WorldConfig, n: int) -> np.ndarray:
    """Heavy-tailed mention counts: a discrete Pareto law, with a share of facts never stated."""
    m = np.floor(rng.random(n) ** (-1.0 / cfg.mention_alpha)).astype(np.int64)
    m = np.minimum(m, cfg.max_mentions)
    m[rng.random(n) < cfg.p_unseen] = 0
    return m


def build(config: WorldConfig = WorldConfig(), *, seed: int = 0) -> World:
    """Draw a reference world from ``config``; the same seed gives the same world.

    Parameters
    ----------
    config : WorldConfig
    seed : int, the only source of randomness.

    Returns
    -------
    World
    """
    if not isinstance(config, WorldConfig):
        raise ValueError(f"config must be a WorldConfig, got {type(config).__name__}")
    rng = np.random.default_rng(seed)
    taken = set(_COLORS + _CRAFTS + _PETS + _PLACE_SUFFIXES)
    for rel in RELATIONS.values():
        taken.update(" ".join(rel.templates + (qa_prompt(rel.question),)).split())
    entities = tuple(_names(rng, config.n_entities, taken))
    stems = _names(rng, config.n_places, taken)
    places = tuple(f"{s} {_PLACE_SUFFIXES[i % len(_PLACE_SUFFIXES)]}" for i, s in enumerate(stems))
    pools = {"home": places, "color": _COLORS, "craft": _CRAFTS, "pet": _PETS, "mentor": entities}
    values = {r: pools[r] for r in config.relations}

    rows = []
    for e_i, e in enumerate(entities):
        for r in config.relations:
            pool = values[r]
            if r == "mentor":  # nobody mentors themself
                choices = [v for v in pool if v != e]
                rows.append((e, r, choices[rng.integers(len(choices))]))
            else:
                rows.append((e, r, pool[rng.integers(len(pool))]))
    facts = pd.DataFrame(rows, columns=["entity", "relation", "value"])
    n = len(facts)
    facts.insert(0, "fact", np.arange(n))
    mentions = _mentions(rng, config, n)
    # Popular entities are stated more, as in real corpora: the largest counts go to the facts whose
    # entity popularity (plus noise) ranks highest; never-stated facts gather on obscure entities.
    popularity = np.repeat(rng.standard_normal(len(entities)), len(config.relations))
    score = popularity + (rng.standard_normal(n) * config.popularity_noise if np.isfinite(config.popularity_noise)
                          else rng.standard_normal(n) * 1e6)
    mentions = np.sort(mentions)[np.argsort(np.argsort(score))]
    facts["mentions"] = mentions
    facts["noise_rate"] = rng.beta(config.noise_a, config.noise_b, n)

    frequent = np.flatnonzero(mentions >= config.frequent_min)
    n_contested = int(round(config.contested_share * len(frequent)))
    contested = np.zeros(n, bool)
    contested[rng.choice(frequent, n_contested, replace=False)] = True
    facts["type"] = np.select(
        [mentions == 0, contested, mentions >= config.frequent_min], ["unseen", "contested", "frequent"],
        "rare")

    # What the corpus states about each fact.
    corpus, count_rows, n_true, misconceptions = [], [], np.zeros(n, np.int64), [""] * n
    for f in facts.itertuples():
        rel, pool = RELATIONS[f.relation], values[f.relation]
        wrong = [v for v in pool if v != f.value and v != f.entity]
        said: dict[str, int] = {}
        m = f.mentions
        if f.type == "contested":
            mis = wrong[rng.integers(len(wrong))]
            misconceptions[f.fact] = mis
            rate = rng.uniform(config.misconception_low, config.misconception_high)
            k = max(int(rng.binomial(m, rate)), m // 2 + 1)  # the misconception is the corpus's mode
            said[mis] = k
            m -= k
        noise = rng.binomial(m, f.noise_rate)
        said[f.value] = m - noise
        for v in rng.choice(len(wrong), noise):
            said[wrong[v]] = said.get(wrong[v], 0) + 1
        n_true[f.fact] = said[f.value]
        for v, k in said.items():
            if k > 0:
                count_rows.append((f.fact, v, k))
                t = rng.integers(len(rel.templates), size=k)
                corpus.extend(rel.templates[j].format(e=f.entity, v=v) for j in t)
    facts["n_true"] = n_true
    facts["true_rate"] = np.where(mentions > 0, n_true / np.maximum(mentions, 1), np.nan)
    facts["misconception"] = misconceptions
    order = rng.permutation(len(corpus))
    corpus = tuple(corpus[i] for i in order)

    # Stratified split: each type is held out in the same proportion.
    split = np.full(n, "train", dtype=object)
    for t in FACT_TYPES:
        idx = rng.permutation(np.flatnonzero(facts["type"].to_numpy() == t))
        split[idx[: int(round(config.heldout_share * len(idx)))]] = "heldout"
    facts["split"] = split
    facts = facts[["fact", "entity", "relation", "value", "type", "mentions", "n_true", "true_rate",
                   "noise_rate", "misconception", "split"]]

    twohop = pd.DataFrame(columns=["entity", "via", "bridge", "relation", "value"])
    if "mentor" in config.relations:
        truth = facts.set_index(["entity", "relation"])["value"]
        hop = [(e, "mentor", truth[(e, "mentor")], r, truth[(truth[(e, "mentor")], r)])
               for e in entities for r in config.relations if r != "mentor"]
        twohop = pd.DataFrame(hop, columns=["entity", "via", "bridge", "relation", "value"])
    counts = pd.DataFrame(count_rows, columns=["fact", "value", "count"])
    format_entities: tuple[str, ...] = ()
    if config.qa_share > 0:
        format_entities, corpus = _qa_pretraining(config, seed, taken, values, corpus)
    control_entities: tuple[str, ...] = ()
    if config.control_share > 0:   # a generator of its own, drawn last: the world is the same without them
        control_entities = tuple(_names(np.random.default_rng([seed, 2]),
                                        max(1, int(round(config.control_share * config.n_entities))), taken))
    return World(config=config, seed=seed, entities=entities, values=values, facts=facts,
                 counts=counts, corpus=corpus, twohop=twohop, format_entities=format_entities,
                 control_entities=control_entities)


def _qa_pretraining(config: WorldConfig, seed: int, taken: set[str], values: dict, corpus: tuple[str, ...]):
    """``round(qa_share · n_entities)`` extra entities, each with a true value per relation (a mentor among
    themselves), whose facts the corpus states as QA pairs, as often as the mention law says (at least once, no
    noise); returns the entities and the corpus with those lines shuffled in. A generator of its own, drawn after
    everything else, leaves the world's facts, counts, split and its other corpus lines as they are without it."""
    rng = np.random.default_rng([seed, 1])
    names = tuple(_names(rng, max(1, int(round(config.qa_share * config.n_entities))), taken))
    mentions = np.maximum(_mentions(rng, config, len(names) * len(config.relations)), 1)
    lines, i = [], 0
    for e in names:
        for r in config.relations:
            pool = [v for v in names if v != e] if r == "mentor" else list(values[r])
            value = pool[rng.integers(len(pool))] if pool else e
            question = qa_prompt(RELATIONS[r].question.format(e=e))
            lines.extend([f"{question} {value}"] * int(mentions[i]))
            i += 1
    merged = list(corpus) + lines
    order = rng.permutation(len(merged))
    return names, tuple(merged[j] for j in order)
