"""Deskstream's application layer: settings, the Faust app, the CLI and the local Kafka stack.

Importing this package is cheap: the Faust app lives in ``app.faust_app`` and is imported only
by the worker, so the CLI and the tests of pure logic never pay for it.
"""
