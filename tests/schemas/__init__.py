"""Tests for schemas/: golden bytes, errors, round trips, compatibility, and Java's reader."""
