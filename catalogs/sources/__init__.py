"""Price sources for ``flopopt catalog refresh``: one module per source, each format → offers.csv rows.

=================  ===========================================================  ==========
feed               what is fetched                                              format
=================  ===========================================================  ==========
``skypilot:<c>``   SkyPilot's public catalog ``<base>/<c>/vms.csv`` per cloud    CSV
``azure``          Azure Retail Prices API, GPU VM sizes of ``AZURE_GPU_VMS``   paged JSON
``vast``           vast.ai marketplace search (``/api/v0/bundles/``), median    JSON
                   of verified offers per (GPU, count)
=================  ===========================================================  ==========

Per source (``skypilot``, ``azure``, ``vast``): a mapping table (the source's names →
gpus.csv ids, in accelerators.csv, tested against gpus.csv), a pure ``adapt_*`` function
(parsed response → ``base.Adapted`` rows, with every skipped record counted by reason), and a
``fetch_*`` runner that fetches with a ``fetch.Fetcher`` and adapts. ``base`` holds what they
share (the row format, billing terms, the runner protocol); ``registry`` lists the feeds in
precedence order. Rows are strings in offers.csv's columns; validating them is the caller's
job (``refresh``). This file imports nothing: import the module you need.
"""
