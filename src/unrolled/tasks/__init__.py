"""The pipelines the command line runs, on the data shipped in the package.

- :mod:`unrolled.tasks.series`: one-step forecasting of a series: the yearly sunspots on
  their classic split (ARV beside persistence and a least-squares AR), a CSV column or
  daily stock returns (split 70/15/15 in time), closed-loop forecasts, and the work of
  ``unrolled train``, ``unrolled forecast`` and ``unrolled impulse``;
- :mod:`unrolled.tasks.sequences`: the sequence tasks of ``examples/`` (Japanese vowels,
  spoken digits, a character model of the Gospel of John, sequence reversal),
  ``unrolled train --task`` (:func:`run_task`) and ``unrolled sample``;
- :mod:`unrolled.tasks.plots`: the PNGs they write (matplotlib imported only to draw).

Nothing in the models, blocks or engine imports this package; ``import unrolled`` does
not import it either.
"""

from . import plots, sequences, series
from .plots import *  # noqa: F401,F403  (each module's __all__ is its public names)
from .sequences import *  # noqa: F401,F403
from .series import *  # noqa: F401,F403

__all__ = [*series.__all__, *sequences.__all__, *plots.__all__]
