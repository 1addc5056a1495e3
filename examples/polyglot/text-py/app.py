"""The polyglot example's Python activity (componentize-py).

Import every module at the top: componentize-py snapshots what is imported
at build time (`collections.Counter.most_common` needs `heapq`).
"""
import collections
import heapq  # noqa: F401  (used by Counter.most_common)
import re

import wit_world
from wit_world.imports import context
from wit_world.imports.types import LogLevel

STOP_WORDS = set("""a an and are as at be but by can for from has have in into is it its of on or so
than that the their them then there these they this to was were when which while will with""".split())


class WitWorld(wit_world.WitWorld):
    def top_keywords(self, text: str, n: int) -> list[wit_world.Keyword]:
        words = [w for w in re.findall(r"[a-z][a-z']+", text.lower()) if w not in STOP_WORDS]
        top = collections.Counter(words).most_common(n)
        context.log(LogLevel.INFO, f"top {n} of {len(words)} words (Python)")
        return [wit_world.Keyword(word=w, count=c) for w, c in top]
