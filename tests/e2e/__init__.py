"""End-to-end tests of the whole system: real Kafka, a worker process, the platform sandboxes.

The one place tests do not mirror a source folder: they exercise every folder at once.
"""
