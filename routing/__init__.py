"""Automatic call distribution: which agent gets a caller, and how the caller gets there."""
