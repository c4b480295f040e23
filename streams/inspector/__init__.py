"""The table inspector: HTML pages and their JSON twins under /ui/ on every worker's web server (docs/inspector.md)."""
