"""The demo store: a seeded synthetic shop in the Amazon Reviews 2023 raw format, written for
`llada-rec demo` (and ``--data.dataset.generate_demo``) and for tests. ``catalogue`` makes the items
from ``vocabulary.json``; ``store`` makes the users, their reviews and the files."""
