"""qik.testing is a pytest plugin (entry point ``pytest11``): its ``qik_project`` fixture is
available without a ``pytest_plugins`` line. The suite runs with plugin autoloading off, so
it never depends on what else is installed; a test that needs autoloading turns it on
(``p.env["QIK_DISABLE_PLUGIN_AUTOLOAD"] = ""``)."""

import os

os.environ["QIK_DISABLE_PLUGIN_AUTOLOAD"] = "1"
