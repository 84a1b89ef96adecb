"""File import (CSV, XLSX, NDJSON) of members, orders and events.

``readers`` stream rows, ``presets`` and ``mapping`` say which column is which field,
``records`` turns rows into service records (grouping an order's lines), and
:func:`siyu.integrations.services.import_file` feeds them to the batch services in chunks.
"""
