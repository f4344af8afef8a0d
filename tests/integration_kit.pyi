# For mypy only: the integration tests import their helpers as the top-level module
# ``integration_kit`` (pytest puts tests/integration on sys.path), while mypy, with
# ``tests`` as its package base, knows that file as ``integration.integration_kit``.
from integration.integration_kit import *  # noqa: F403
