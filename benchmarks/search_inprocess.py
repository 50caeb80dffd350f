"""The search backend measured in-process, one thread, on the benchmark dataset.

Runs the mixed query set (``search_queries.py``) through:

- ``plain-nofacets``: the same without facets;
- ``nowordcache``: ``WhooshSearch`` without its per-word score cache and result caches;
- ``plain``: whoosh as it comes, on the same index: the text through whoosh's query parser
  (AND grouping), filters as a filter query (the verified window from the ``verified_at``
  column), ``groupedby`` facets,
  a limit of one page (what the issue's first measurement did);
- ``backend``: ``WhooshSearch`` with its result caches off (query understanding, cached
  per-generation document sets, whoosh only for free words);
- ``cached``: ``WhooshSearch`` as configured (result caches on), second pass over the mix.

    .venv/bin/python -m benchmarks.search_inprocess --db /tmp/search-bench/directory.sqlite3 \
        --index /tmp/search-bench/index
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import timedelta

from benchmarks.search_queries import query_mix


def to_query(params: dict[str, str]):
    from directory.search import SearchQuery

    return SearchQuery(
        text=params.get("q", ""),
        place=params.get("where", ""),
        service=params.get("service"),
        city=params.get("city"),
        province=params.get("province"),
        status=params.get("status"),
        include_unverified=params.get("include_unverified") == "true",
        sort=params.get("sort", "relevance"),
        page=int(params.get("page", 1)),
        per_page=20,
    )


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)

    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]

    return {
        "n": len(ordered),
        "p50_ms": round(pct(50) * 1000, 2),
        "p95_ms": round(pct(95) * 1000, 2),
        "p99_ms": round(pct(99) * 1000, 2),
        "mean_ms": round(statistics.fmean(ordered) * 1000, 2),
    }


class PlainWhoosh:
    """Whoosh as it comes: parser, filter query, groupedby facets, limit = one page."""

    def __init__(self, index_dir, max_age: timedelta, facets: bool = True) -> None:
        from whoosh import index as whoosh_index
        from whoosh.qparser import AndGroup, MultifieldParser

        from directory.search.whoosh import store
        from directory.search.whoosh.documents import FIELD_BOOSTS, TEXT_FIELDS

        generation = store.current_generation(index_dir)
        self.ix = whoosh_index.open_dir(str(generation))
        self.searcher = self.ix.searcher()  # one shared searcher
        self.parser = MultifieldParser(
            list(TEXT_FIELDS), self.ix.schema, fieldboosts=FIELD_BOOSTS, group=AndGroup
        )
        self.max_age = max_age
        self.facets = facets
        self.verified_at = list(self.searcher.reader().column_reader("verified_at"))

    def search(self, query):
        from whoosh import sorting
        from whoosh.query import And, Every, Term

        from directory.search import text
        from directory.search.whoosh.documents import epoch_us
        from directory.util.clock import utcnow

        q = self.parser.parse(query.text) if query.text.strip() else Every()
        filters = [Term("kind", "p")]
        if query.service:
            filters.append(Term("service", query.service))
        for name in ("city", "province"):
            if getattr(query, name):
                filters.append(Term(name, text.key(getattr(query, name))))
        if query.place:
            filters.append(Term("city", text.key(query.place)))
        if query.status:
            filters.append(Term("status", query.status))
        if not query.include_unverified:
            cutoff = epoch_us(utcnow() - self.max_age)
            filters += [Term("status", "active"), Term("pending", "0")]
        facets = {
            "services": sorting.FieldFacet("service", allow_overlap=True),
            "cities": sorting.FieldFacet("city", allow_overlap=True),
        }
        window = And(filters)
        if not query.include_unverified:
            # ``verified_at`` is a column, not terms (no range query over it): the window
            # is the filter's documents whose column value is past the cut-off.
            verified_at = self.verified_at
            window = {d for d in self.searcher.docs_for_query(window) if verified_at[d] > cutoff}
        results = self.searcher.search(
            q,
            filter=window,
            limit=query.page * query.per_page,
            groupedby=facets if self.facets else None,
        )
        hits = [results[i].fields() for i in range(min(len(results), query.per_page))]
        if not self.facets:
            return len(results), hits
        return len(results), hits, results.groups("services"), results.groups("cities")


def run(label: str, fn, mix: list[dict[str, str]]) -> dict:
    samples = []
    errors = 0
    for params in mix:
        started = time.perf_counter()
        try:
            fn(to_query(params))
        except Exception:
            errors += 1
        samples.append(time.perf_counter() - started)
    return {"mode": label, **percentiles(samples), "errors": errors}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True)
    parser.add_argument("--index", required=True)
    parser.add_argument("--queries", type=int, default=600)
    parser.add_argument("--plain-queries", type=int, default=200, help="plain whoosh is slow")
    parser.add_argument("--modes", default="plain,plain-nofacets,nowordcache,backend,cached")
    args = parser.parse_args(argv)

    from pathlib import Path

    from config.settings import DefaultConfig
    from directory import create_app
    from directory.extensions import db
    from directory.registry.policy import RegistryPolicy
    from directory.search import whoosh

    base = {
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{Path(args.db).resolve()}",
        "SEARCH_INDEX_DIR": str(Path(args.index).resolve()),
    }
    modes = args.modes.split(",")
    report = []
    app = create_app(base)
    with app.app_context():
        mix = query_mix(db.engine, args.queries)
        if "plain" in modes:
            plain = PlainWhoosh(
                Path(args.index), RegistryPolicy.from_config(app.config).verification_max_age
            )
            run("plain (warm-up)", plain.search, mix[:20])
            report.append(run("plain", plain.search, mix[: args.plain_queries]))
        if "plain-nofacets" in modes:
            plain = PlainWhoosh(
                Path(args.index),
                RegistryPolicy.from_config(app.config).verification_max_age,
                facets=False,
            )
            run("plain (warm-up)", plain.search, mix[:20])
            report.append(run("plain, no facets", plain.search, mix[: args.plain_queries]))
        if "nowordcache" in modes:
            app.config.update(SEARCH_CACHE_SIZE=0, SEARCH_SCORE_CACHE_DOCS=0)
            backend, _keeper = whoosh.create(app)
            run("warm-up", backend.search, mix[:50])
            report.append(run("backend, no per-word score cache, no result cache",
                              backend.search, mix))  # fmt: skip
            app.config["SEARCH_SCORE_CACHE_DOCS"] = DefaultConfig.SEARCH_SCORE_CACHE_DOCS
        if "backend" in modes:
            app.config["SEARCH_CACHE_SIZE"] = 0
            backend, _keeper = whoosh.create(app)
            report.append(
                run("backend, first pass (per-generation sets built)", backend.search, mix)
            )
            report.append(run("backend, no result cache", backend.search, mix))
        if "cached" in modes:
            app.config["SEARCH_CACHE_SIZE"] = 4096
            backend, _keeper = whoosh.create(app)
            run("cached (warm-up)", backend.search, mix)
            report.append(run("backend, result cache warm", backend.search, mix))
    for line in report:
        print(json.dumps(line))
    return 0


if __name__ == "__main__":
    sys.exit(main())
