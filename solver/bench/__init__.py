"""Benchmarks: sweeps of methods over suites, result rows, tables, plots and regression checks.

One concept per module (none imports matplotlib, rich or Dask at import time):

- :mod:`~solver.bench.tasks`: a self-contained run (:class:`~solver.bench.tasks.RunTask`) and the
  task list of a suite (:func:`~solver.bench.tasks.build_tasks`).
- :mod:`~solver.bench.planners`: method specs (registered names, ``module:function``, labels).
- :mod:`~solver.bench.execute`: one run in a child process with hard time limits
  (:func:`~solver.bench.execute.execute_run`); :mod:`~solver.bench.child` is that child,
  :mod:`~solver.bench.protocol` their messages (custom planners run under the driver's rules
  through :func:`solver.solve.solve_with`).
- :mod:`~solver.bench.local` and :mod:`~solver.bench.cluster`: backends (local pool, Dask).
- :mod:`~solver.bench.sweep`: a sweep with rows written as they arrive, and resume.
- :mod:`~solver.bench.rows`: the result row and its CSV form.
- :mod:`~solver.bench.check`: the regression check.
- :mod:`~solver.bench.summary`, :mod:`~solver.bench.plots`: Markdown tables, overhead plots.
- :mod:`~solver.bench.occupancy`, :mod:`~solver.bench.schedule_plot`: memory over time and the
  figure of one schedule (``tierplan plot``).
- :mod:`~solver.bench.progress`, :mod:`~solver.bench.versions`, :mod:`~solver.bench.faults`:
  progress display, code and library versions, misbehaving planners for tests.

See ``docs/bench.md`` and ``docs/sweeps.md``.
"""
