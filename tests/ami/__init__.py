"""AMI tests (a package so that test_codec.py does not clash with tests/agi/test_codec.py)."""
