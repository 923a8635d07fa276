"""The benchmark suite (`python -m bench`, `./task bench`); speed is measured
here, never asserted in tests."""
