"""``python -m app`` is the ``deskstream`` command (for environments without the script)."""

from app.cli import main

main()
