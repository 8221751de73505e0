"""The built-in temporal modules, one file each; every docstring cites the paper section it implements.

Each file declares its :class:`~tembench.models.protocol.TemporalModule` specs in ``SPECS``; importing this
package registers them (in this order, which is the order ``tembench`` lists them in). Nothing here
imports a host: the modules plug in only through the protocol's slots.
"""
from tembench.models.protocol import register
from tembench.models.temporal import atm, emim, i3d, ila, mit, nonlocal_, pool, spacetime, tam, tconv, teinet, tsm

BUILTIN = tuple(spec for module in (tsm, tam, tconv, pool, teinet, i3d, nonlocal_, atm, ila, mit, spacetime, emim)
                for spec in module.SPECS)
for _spec in BUILTIN:
    register(_spec)
