"""Answers that look like the job: values the test server derives from the record's text.

Still deterministic and schema-shaped, but read from the input, so the demo's printout
shows what each DAG does: an enum value by word overlap with the text, a summary from its
first sentences, a title from its first line, numbers from the numbers in it, the
language from its common words, attribute pairs from its clauses.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:[.,]\d+)?")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
#: A few words that point at common labels beyond the label itself (triage, sentiment).
_HINTS: dict[str, tuple[str, ...]] = {
    "urgent": ("urgent", "asap", "immediately", "emergency", "smoke", "burning", "fire", "hacked", "fraud", "lawyer"),
    "high": ("charged", "twice", "overdraft", "again", "refund"),
    "low": ("how", "which", "guide", "question", "thanks"),
    "negative": ("not", "never", "broken", "broke", "late", "twice", "wrong", "damaged", "disappointed", "terrible"),
    "positive": ("thanks", "great", "love", "happy", "perfect", "perfectly", "excellent", "quickly"),
    "payment": ("charged", "card", "paid", "invoice", "payment"),
    "delivery": ("tracking", "transit", "arrived", "parcel", "shipping", "courier"),
    "defect": ("broken", "stopped", "faulty", "cracked", "defect"),
    "safety": ("smoke", "burning", "hot", "spark", "fire"),
    "account_security": ("password", "login", "hacked"),
    "order_change": ("cancel", "change", "address"),
    "return_exchange": ("exchange", "return", "size"),
    "product_question": ("how", "which", "guide", "descale", "question"),
    # shop categories (the product-enrichment example)
    "outdoor": ("trail", "hiking", "tent", "camping", "sleeping", "jacket", "down", "merino", "bottle"),
    "sports & fitness": ("yoga", "dumbbell", "dumbbells", "fitness", "sweatproof", "workout"),
    "kitchen": ("skillet", "knife", "pan", "chef", "cookware", "induction"),
    "coffee": ("espresso", "coffee", "grinder", "dripper", "portafilter", "carafe"),
    "audio": ("headphones", "earbuds", "speaker", "anc", "playback"),
    "computing": ("monitor", "keyboard", "mouse", "laptop", "dpi", "usb"),
    "smart home": ("thermostat", "vacuum", "purifier", "hepa", "air", "wi", "app", "voice"),
    "home textiles": ("bedding", "duvet", "linen", "cotton", "towel", "cloth"),
    "kids & baby": ("kids", "baby", "toddler", "children", "parent"),
    "cycling": ("bike", "cycling", "helmet", "lumen", "saddle"),
    "e-readers & wearables": ("reader", "smartwatch", "watch", "gps", "heart"),
    "power & energy": ("battery", "lifepo4", "station", "solar", "charger"),
}
_DEFAULT_LABELS = ("other", "normal", "neutral", "medium", "unknown", "none", "general")
_STOPWORDS = {
    "en": ("the", "and", "of", "to", "is", "in", "for", "with"),
    "de": ("der", "die", "und", "das", "ist", "mit", "für", "nicht"),
    "es": ("el", "la", "de", "que", "y", "los", "para", "con"),
    "fr": ("le", "la", "et", "les", "des", "est", "pour", "une"),
    "it": ("il", "di", "che", "e", "per", "una", "con", "non"),
}
_LANGUAGE_NAMES = {"en": "English", "de": "German", "es": "Spanish", "fr": "French", "it": "Italian"}


def words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


def content(prompt: str) -> str:
    """The record's own text: a short header (``Document: x``, ``Ticket ... / Subject: ...``) dropped."""
    head, sep, body = prompt.strip().partition("\n\n")
    if sep and body.strip() and len(head.splitlines()) <= 2:
        return body.strip()
    return prompt.strip()


def sentences(text: str) -> list[str]:
    """Sentences, a line break ending one too (a title line has no full stop)."""
    found: list[str] = []
    for line in text.splitlines():
        found.extend(s for s in _SENTENCE_END.split(" ".join(line.split())) if s)
    return found


def body(text: str) -> str:
    """The text without its title line (a short first line followed by more)."""
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) > 1 and len(lines[0]) <= 100 and not lines[0].rstrip().endswith((".", "!", "?")):
        return "\n".join(lines[1:])
    return text


def first_line(text: str, limit: int = 80) -> str:
    line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


def first_sentences(text: str, limit: int = 200) -> str:
    """Whole sentences from the start, as many as fit in ``limit`` characters (at least a cut first one)."""
    out = ""
    for sentence in sentences(text):
        candidate = f"{out} {sentence}".strip()
        if len(candidate) > limit:
            break
        out = candidate
    return out or " ".join(text.split())[:limit]


def numbers(text: str) -> list[float]:
    return [float(n.replace(",", ".")) for n in _NUMBER.findall(text)]


def language(text: str) -> str:
    """The ISO 639-1 code whose common words the text uses most (English when unsure)."""
    found = words(text)
    scores = {code: sum(found.count(w) for w in common) for code, common in _STOPWORDS.items()}
    best = max(scores, key=lambda code: scores[code])
    return best if scores[best] > scores["en"] else "en"


def language_value(text: str, name: str, schema: dict[str, Any]) -> str:
    code = language(text)
    wants_code = "code" in name or "iso" in str(schema.get("description", "")).lower()
    wants_code = wants_code or int(schema.get("maxLength", 99)) <= 5
    return code if wants_code else _LANGUAGE_NAMES[code]


def _matches(token: str, text_words: Sequence[str]) -> bool:
    stem = token[:5]
    return any(w == token or (len(stem) >= 4 and w.startswith(stem)) for w in text_words)


def enum_choice(options: Sequence[Any], text: str) -> Any | None:
    """The option sharing most words with the text (hint words count too); a default-like one on a tie."""
    text_words = words(text)
    best, best_score = None, 0
    for option in options:
        tokens = [t for t in words(str(option)) if len(t) >= 3]
        tokens += list(_HINTS.get(str(option).lower(), ()))
        score = sum(1 for t in tokens if _matches(t, text_words))
        if score > best_score:
            best, best_score = option, score
    if best is not None:
        return best
    return next((o for o in options if str(o).lower() in _DEFAULT_LABELS), None)


def flag(name: str, text: str) -> bool | None:
    """True when the field's own words (or their hints) appear in the text; None when nothing says."""
    text_words = words(text)
    tokens = [t for t in words(name.replace("_", " ")) if len(t) >= 4 and t not in ("needs", "is", "has")]
    hinted = [h for t in tokens for h in _HINTS.get(t, ())]
    if any(_matches(t, text_words) for t in tokens + hinted):
        return True
    return None


def clause_pair(text: str, index: int) -> tuple[str, str] | None:
    """The ``index``-th clause of the text's longest line as (name, value): ``Weight 310g`` -> (weight, 310g)."""
    line = max((line.strip() for line in text.splitlines()), key=len, default="")
    line = re.sub(r"^[\w ]{1,30}:\s+", "", line)  # a "Supplier description: " label
    clauses = [c.strip() for c in re.split(r"[.,;]\s+|\.$", line) if len(c.strip()) > 2]
    clauses = [c for c in clauses if len(c.split()) >= 2]
    if index >= len(clauses):
        return None
    clause = clauses[index]
    if ":" in clause:
        name, _, value = clause.partition(":")
    elif any(ch.isdigit() for ch in clause.split(" ", 1)[1]):
        name, _, value = clause.partition(" ")
    else:
        value, _, name = clause.rpartition(" ")
    return name.strip().lower(), value.strip()
