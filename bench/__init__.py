"""The benchmarks: each prints figures and writes them to ``bench/results/``.
Run one from the repository's root as a module, e.g. ``python -m bench.claim
--quick``; ``python -m bench.run_all`` runs them all (``bench/README.md``).
Nothing in the app imports this package."""
